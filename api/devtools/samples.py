"""Realistic fake certificate values for demos, load tests and property tests.

Holders are invented: Chinese names from common surnames and given-name characters, 18-digit resident
identity numbers with a correct GB 11643 check digit (and a birthplace code stdnum accepts for the birth
year), companies with a valid USCC (GB 32100, including the GB 11714 organisation-code check character),
Heilongjiang addresses and consistent dates. Identifiers and salts are not generated: the issuing service
assigns those.

>>> from pathlib import Path
>>> from registry.seeds import load_seeds
>>> seeds = load_seeds(Path("seeds"))
>>> licence = seeds.certificate_types[0]
>>> [v] = sample_values(licence, 1, issuer=seeds.member(licence.issuers[0]), seed=7)
>>> v["证照名称"], len(v["持证主体代码"])
('营业执照', 18)
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import Any

from stdnum.cn import ric, uscc

from registry.seeds import CertificateType, FieldSpec, JsonValue, SeedMember

__all__ = ["sample_values"]

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔"
)
_GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红玉春雪梅鹏飞宇浩然欣怡子涵思远佳琪俊峰"
    "晓东文博海波立新丹凤振宇雨婷梓轩一鸣秋实冬梅松涛冰清北辰"
)
# GB/T 2260 county codes in Heilongjiang with the first year stdnum's birthplace table accepts them
# (a resident ID's code must have existed in the holder's birth year); 0 = always.
_BIRTHPLACES: tuple[tuple[str, int], ...] = (
    ("230100", 0), ("230200", 0), ("230300", 0), ("230600", 0), ("230722", 0), ("232721", 0),
    ("230102", 1983), ("230103", 1983), ("230104", 1983), ("230108", 1983), ("230202", 1983),
    ("230302", 1983), ("230602", 1983), ("230603", 1983), ("230604", 1983), ("230803", 1983),
    ("231002", 1983), ("230125", 1991), ("230183", 1996), ("230184", 1996), ("230110", 2006),
)
_DISTRICTS = (
    ("230102", "哈尔滨市道里区", ("中央大街", "友谊路", "经纬街", "安隆街", "群力大道")),
    ("230103", "哈尔滨市南岗区", ("西大直街", "红军街", "学府路", "果戈里大街", "黄河路")),
    ("230104", "哈尔滨市道外区", ("靖宇街", "南勋街", "北十四道街", "滨江路")),
    ("230109", "哈尔滨市松北区", ("世茂大道", "创新一路", "科技创新城智谷大街")),
    ("230110", "哈尔滨市香坊区", ("中山路", "旭升街", "进乡街", "电碳路")),
    ("230202", "齐齐哈尔市龙沙区", ("卜奎大街", "龙华路", "建华路")),
    ("230602", "大庆市萨尔图区", ("纬二路", "中央大街", "东风路")),
    ("231002", "牡丹江市东安区", ("太平路", "东一条路", "光华街")),
    ("230803", "佳木斯市向阳区", ("长安路", "中山街", "光复路")),
)
_BRAND = "龙江北方冰城松花江华兴鑫达金源恒泰盛世天诚宏远瑞丰嘉禾鸿运博雅新程卓越润泽东极雪乡黑土地"
_INDUSTRY = (
    ("商贸", "日用百货、五金产品、电子产品销售", "食品销售经营者", "预包装食品（含冷藏冷冻食品）销售"),
    ("餐饮管理", "餐饮服务；餐饮管理；食品经营", "餐饮服务经营者", "热食类食品制售；冷食类食品制售"),
    ("科技", "软件开发；信息技术咨询服务；数据处理和存储支持服务",
     "单位食堂", "热食类食品制售"),
    ("食品", "食品生产；食品销售；农副产品销售", "食品销售经营者", "散装食品（含熟食）销售"),
    ("物流", "道路货物运输（不含危险货物）；国内货物运输代理；仓储服务",
     "单位食堂", "热食类食品制售"),
    ("农业发展", "谷物种植；大豆种植；农产品的生产、销售、加工、运输、贮藏",
     "食品销售经营者", "农产品销售"),
)
_ENTITY_TYPES = ("有限责任公司（自然人投资或控股）", "有限责任公司（自然人独资）",
                 "股份有限公司（非上市、自然人投资或控股）", "有限责任公司（国有独资）")
_UNIVERSITIES = ("哈尔滨工业大学", "哈尔滨工程大学", "东北林业大学", "东北农业大学", "黑龙江大学", "哈尔滨医科大学",
                 "哈尔滨理工大学", "东北石油大学", "齐齐哈尔大学", "佳木斯大学")
_MAJORS = (("工学", "计算机科学与技术"), ("工学", "土木工程"), ("工学", "船舶与海洋工程"), ("理学", "数学与应用数学"),
           ("经济学", "金融学"), ("管理学", "会计学"), ("法学", "法学"), ("文学", "汉语言文学"), ("农学", "农学"),
           ("医学", "临床医学"), ("艺术学", "音乐表演"), ("教育学", "学前教育"))
_OCCUPATIONS = ("电工", "焊工", "中式烹调师", "育婴员", "汽车维修工", "保育师", "健康管理师", "网络与信息安全管理员",
                "农业技术员", "养老护理员")
_SKILL_LEVELS = ("五级/初级工", "四级/中级工", "三级/高级工", "二级/技师", "一级/高级技师")
_TRANSPORT = ("经营性道路旅客运输驾驶员", "经营性道路货物运输驾驶员", "道路危险货物运输驾驶员",
              "道路危险货物运输押运人员", "机动车维修技术人员")
_LAW_FIRMS = ("黑龙江龙大律师事务所", "黑龙江远东律师集团事务所", "北京大成（哈尔滨）律师事务所",
              "黑龙江普润律师事务所", "黑龙江冰城律师事务所")
_PURPOSES = ("入职", "出国留学", "申请签证", "驾驶员从业资格审核", "报考公务员", "教师资格认定")
_USCC_ORG_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _org_code(rng: random.Random) -> str:
    """A 9-character organisation code: 8 characters + GB 11714-1997 check character.

    python-stdnum has no GB 11714 module; the rule is C9 = 11 - (sum of value * weight mod 11), with
    weights 3 7 9 10 5 8 4 2, letters worth 10-35, and 10 -> 'X', 11 -> '0'.
    """
    body = "".join(rng.choices(_USCC_ORG_CHARS[:10], k=2) + rng.choices(_USCC_ORG_CHARS, k=6))
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, weights, strict=True))
    check = 11 - total % 11
    return body + ("X" if check == 10 else "0" if check == 11 else str(check))


def _company_uscc(rng: random.Random, region: str) -> str:
    base = "91" + region + _org_code(rng)  # 9 = 市场监管 registration, 1 = enterprise
    return base + uscc.calc_check_digit(base)


def _resident_id(rng: random.Random, birth: dt.date, male: bool) -> str:
    eligible = [code for code, since in _BIRTHPLACES if since <= birth.year]
    seq = rng.randrange(0, 50) * 2 + (1 if male else 0)  # GB 11643: the 17th digit is odd for men
    body = f"{rng.choice(eligible)}{birth:%Y%m%d}{rng.randrange(10)}{seq:02d}"
    return body + ric.calc_check_digit(body + "0")


def _date_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randrange(max(1, (end - start).days + 1)))


def _plus_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _address(rng: random.Random) -> tuple[str, str, str, str]:
    """(county code, district, street, full address)."""
    code, district, streets = rng.choice(_DISTRICTS)
    street = rng.choice(streets)
    return code, district, street, f"黑龙江省{district}{street}{rng.randrange(1, 400)}号"


def _person(rng: random.Random, today: dt.date) -> dict[str, Any]:
    male = rng.random() < 0.5
    birth = _date_between(rng, dt.date(1962, 1, 1), _plus_years(today, -27))
    name = rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2, 2))))
    return {"name": name, "code": _resident_id(rng, birth, male), "sex": "男" if male else "女", "birth": birth}


def _company(rng: random.Random, today: dt.date) -> dict[str, Any]:
    region, district, _, address = _address(rng)
    industry = rng.choice(_INDUSTRY)
    brand = "".join(rng.sample(_BRAND, 2))
    return {"name": f"{district.split('市')[0]}{brand}{industry[0]}有限公司", "code": _company_uscc(rng, region),
            "address": address,
            "industry": industry, "legal_rep": rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=2)),
            "founded": _date_between(rng, dt.date(1998, 1, 1), today - dt.timedelta(days=30))}


Ctx = dict[str, Any]
_Gen = Callable[[random.Random, Ctx], JsonValue]

# Generators for the type-specific fields in seeds/certificate_types.yaml, by field name.
_FIELDS: dict[str, _Gen] = {
    "类型": lambda r, c: r.choice(_ENTITY_TYPES),
    "法定代表人": lambda r, c: c["holder"].get("legal_rep"),
    "注册资本": lambda r, c: f"{r.choice((10, 50, 100, 200, 500, 1000, 3000))}.00",
    "成立日期": lambda r, c: c["holder"]["founded"].isoformat(),
    "营业期限": lambda r, c: r.choice(("长期", f"{c['holder']['founded']:%Y年%m月%d日}至长期")),
    "住所": lambda r, c: c["holder"]["address"],
    "经营范围": lambda r, c: c["holder"]["industry"][1] + "。（依法须经批准的项目，经相关部门批准后方可开展经营活动）",
    "经营场所": lambda r, c: c["holder"]["address"],
    "主体业态": lambda r, c: c["holder"]["industry"][2],
    "经营项目": lambda r, c: c["holder"]["industry"][3],
    "网络经营": lambda r, c: r.random() < 0.3,
    "日常监督管理机构": lambda r, c: f"{c['issuer'].short_name}{r.choice(('道里', '南岗', '道外', '香坊'))}分局",
    "投诉举报电话": lambda r, c: "12315",
    "性别": lambda r, c: c["holder"]["sex"],
    "出生日期": lambda r, c: c["holder"]["birth"].isoformat(),
    "从业资格类别": lambda r, c: r.choice(_TRANSPORT),
    "准驾车型": lambda r, c: r.choice(("A1", "A2", "B1", "B2")),
    "初次领证日期": lambda r, c: _date_between(r, _plus_years(c["holder"]["birth"], 21), c["issued"]).isoformat(),
    "学位授予单位": lambda r, c: r.choice(_UNIVERSITIES),
    "学位级别": lambda r, c: r.choice(("学士", "学士", "学士", "硕士", "博士")),
    "学科门类": lambda r, c: c["major"][0],
    "专业": lambda r, c: c["major"][1],
    "授予日期": lambda r, c: dt.date(c["issued"].year - (c["issued"].month < 7), 6, 30).isoformat(),
    "职业名称": lambda r, c: r.choice(_OCCUPATIONS),
    "职业技能等级": lambda r, c: r.choice(_SKILL_LEVELS),
    "理论知识考试成绩": lambda r, c: r.randrange(60, 100),
    "操作技能考核成绩": lambda r, c: r.randrange(60, 100),
    "评价机构": lambda r, c: "黑龙江省职业技能鉴定中心",
    "共有情况": lambda r, c: r.choice(("单独所有", "共同共有", "按份共有")),
    "坐落": lambda r, c: c["address"][3] + f"{r.randrange(1, 30)}栋{r.randrange(1, 6)}单元{r.randrange(1, 33)}层"
    f"{r.randrange(1, 5)}号",
    "不动产单元号": lambda r, c: f"{c['address'][0]}{r.randrange(1, 999999):06d}GB{r.randrange(1, 99999):05d}"
    f"F{r.randrange(1, 99999999):08d}",
    "权利类型": lambda r, c: "国有建设用地使用权/房屋所有权",
    "权利性质": lambda r, c: r.choice(("出让/市场化商品房", "出让/存量房", "划拨/房改房")),
    "用途": lambda r, c: "城镇住宅用地/住宅",
    "房屋建筑面积": lambda r, c: f"{r.randrange(3500, 18000) / 100:.2f}",
    "土地使用期限截止": lambda r, c: f"{r.randrange(2070, 2091)}-12-31",
    "执业机构": lambda r, c: r.choice(_LAW_FIRMS),
    "执业证类别": lambda r, c: r.choice(("专职律师", "专职律师", "兼职律师", "公职律师", "公司律师")),
    "法律职业资格证书编号": lambda r, c: f"A{r.randrange(2008, 2024)}2301{r.randrange(10**7):07d}",
    "首次执业日期": lambda r, c: _date_between(r, _plus_years(c["holder"]["birth"], 24), c["issued"]).isoformat(),
    "查询事由": lambda r, c: r.choice(_PURPOSES),
    "查询结果": lambda r, c: "经查询，截至开具之日，未发现该人员有犯罪记录。",
    "开具单位": lambda r, c: f"{c['address'][1]}公安分局{c['address'][2]}派出所",
}


def _fallback(spec: FieldSpec, rng: random.Random, ctx: Ctx) -> JsonValue:
    """A plausible value for a field without a dedicated generator (types added to seeds later)."""
    if not spec.required and rng.random() < 0.5:
        return None
    if spec.type == "integer":
        return rng.randrange(1, 100)
    if spec.type == "boolean":
        return rng.random() < 0.5
    if spec.type == "decimal":
        return f"{rng.randrange(1, 100000) / 100:.2f}"
    if spec.type == "date":
        return str(ctx["issued"].isoformat())
    return f"示例{spec.name}"[: spec.max_length or None]


def sample_values(
    cert_type: CertificateType,
    count: int,
    *,
    issuer: SeedMember,
    seed: int | None = None,
    today: dt.date | None = None,
    first_number: int | None = None,
) -> list[dict[str, JsonValue]]:
    """``count`` value dicts for ``cert_type`` issued by ``issuer``, each valid for `Document.create`.

    ``seed`` makes the output reproducible (for a fixed ``today``, default: the current date).
    ``first_number`` fixes where the consecutive 证照编号 start (calls generating chunks of one large run
    pass consecutive ranges; by default a random start).
    """
    rng = random.Random(seed)
    today = today or dt.date.today()
    earliest = today.replace(year=today.year - 4) if cert_type.validity_years is None else _plus_years(
        today, -min(cert_type.validity_years, 4))
    organisation = cert_type.holder_code_type == "001"
    specs = cert_type.fields
    out: list[dict[str, JsonValue]] = []
    # 证照编号 is unique per type and issuer (issuing it twice is a replay or a conflict): consecutive numbers
    # from a random start never collide within one call
    drawn = rng.randrange(10**10)
    first_number = drawn if first_number is None else first_number
    for n in range(count):
        holder = _company(rng, today) if organisation else _person(rng, today)
        issued = _date_between(rng, earliest, today)
        if not organisation:
            issued = max(issued, _plus_years(holder["birth"], 25))
        until = None
        if cert_type.validity_years is not None:
            until = (_plus_years(issued, cert_type.validity_years) - dt.timedelta(days=1)).isoformat()
        ctx: Ctx = {"holder": holder, "issued": issued, "issuer": issuer, "address": _address(rng),
                    "major": rng.choice(_MAJORS)}
        values: dict[str, JsonValue] = {
            "证照名称": cert_type.name,
            "证照类型代码": cert_type.code,
            "证照编号": f"{issuer.region}{issued:%Y}{(first_number + n) % 10**10:010d}",
            "颁发机构": issuer.name,
            "颁发机构代码": issuer.uscc,
            "颁发日期": issued.isoformat(),
            "持证主体": holder["name"],
            "持证主体代码": holder["code"],
            "持证主体代码类型": cert_type.holder_code_type,
            "有效期起始": issued.isoformat(),
            "有效期截止": until,
            "属地编码": issuer.region,
        }
        for spec in specs:
            gen = _FIELDS.get(spec.name)
            values[spec.name] = gen(rng, ctx) if gen is not None else _fallback(spec, rng, ctx)
        out.append(values)
    return out
