/* The printable certificate's one button: the browser's print dialog, whose "Save as PDF" is the PDF download
   (a server-made PDF comes later). A saved copy of the page prints the same without this script. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("download-pdf");
  if (button) button.addEventListener("click", () => window.print());
});
