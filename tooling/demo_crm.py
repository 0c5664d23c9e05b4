"""The demo CRM: a seeded, realistic data set in the canonical model, and its loader.

Why it exists: the pipeline needs a CRM to run against out of the box, tests need data that
exercises every rule, and benchmarks need millions of rows. The data follows the business rules
of DESIGN.md (visit windows, SLA targets, business calendar) read from the policy, so most visits
are on time and most tickets meet their targets, with a realistic share of late, missed,
unreachable and still-open cases for the pipeline to find.

Everything is vectorised with numpy; customers are generated in chunks of `CHUNK_CUSTOMERS`, so
memory stays bounded at any size. The same (customers, seed, as_of, chunk size, policy) gives the
same data, row for row. The CRM is "as it stands at the end of `as_of`": every stamp is before
as_of + 1 day 00:00 (naive local time), activity spans the ~18 months before it, and customers'
cooperation started up to several years earlier.

CLI: python -m tooling.demo_crm --url sqlite:///output/demo/crm.sqlite --customers 2000 --seed 7
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import itertools
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import MetaData, Table, bindparam, column, insert, inspect, select, table, update
from sqlalchemy.engine import URL, Connection, make_url

from revisit.config.paths import PROJECT_ROOT
from revisit.config.policy import DEFAULT_POLICY_PATH, Duration, Policy, WindowRule, load_policy
from revisit.config.schema import CATEGORIES as TICKET_CATEGORIES
from revisit.config.schema import (
    CHANNELS,
    PRIORITIES,
    TABLES,
    TICKET_STAMPS,
    TICKET_STATUSES,
    TICKET_TYPES,
    VISIT_KINDS,
    VISIT_METHODS,
    VISIT_OUTCOMES,
)
from revisit.io.db import CRM_SCHEMA, ddl_statements, make_engine
from revisit.rules.calendar import BusinessCalendar

# ================================================================= tunables (shares and rates)
DEFAULT_AS_OF = dt.date(2026, 11, 20)
DEFAULT_CUSTOMERS = 2000
DEFAULT_SEED = 7
CHUNK_CUSTOMERS = 20_000           # customers generated (and written) per chunk
HISTORY_DAYS = 548                 # orders, tickets and visits span the ~18 months before as_of
COOPERATION_YEARS = 6              # the oldest customers started cooperating this long ago
NEW_CUSTOMER_SHARE = 0.35          # customers whose cooperation started within the history
LEAD_WORKING_DAYS = (1, 20)        # customer record created this long before cooperation start

# Organisation
DEPARTMENT_COUNT = (4, 6)          # inclusive range, drawn from the seed
CUSTOMERS_PER_AGENT = 800          # agents per department scale with its customers
MIN_AGENTS_PER_DEPARTMENT = 3
SUPERVISORS_PER_DEPARTMENT = (1, 2)
INACTIVE_AGENT_SHARE = 0.08        # agents who left; their customers still name them as owner
CAPACITY_SET_SHARE = 0.4           # agents with their own daily_capacity (else NULL = policy)
CAPACITY_CHOICES = (20, 30, 35, 40, 50)
STAFF_EMAIL_DOMAIN = "revisit.example.com"  # reserved domain: demo mail can never reach anyone

# Customers
KEY_TIER_SHARE = 0.10
DO_NOT_CALL_SHARE = 0.03
EMAIL_KIND_WEIGHTS = (0.60, 0.25, 0.12, 0.03)  # corporate, netease, qq, none
KEY_TIER_TO_SUPERVISOR_SHARE = 1.0             # key customers visited by a supervisor
COVERING_AGENT_SHARE = 0.10                    # visits made by a colleague of the owner

# Orders
NEW_CUSTOMER_EXTRA_ORDERS = 1.2    # Poisson mean of orders after a new customer's first one
OLD_CUSTOMER_ORDERS = 2.2          # Poisson mean of orders of a customer older than the history
FIRST_ORDER_WORKING_DAYS = 10      # a new customer's first order follows cooperation start
DELIVERY_WORKING_DAYS = (2, 10)
UNDELIVERED_SHARE = 0.02           # back-orders never delivered (delivered_at NULL)
AMOUNT_SPREAD = 0.5                # lognormal sigma around the product's list price

# Tickets
TICKETS_PER_CUSTOMER = 0.8         # Poisson mean
TICKET_ORDER_LINK_SHARE = 0.7      # tickets about one of the customer's orders
TICKET_AFTER_ORDER_WORKING_DAYS = 120
OFF_HOURS_SHARE = 0.12             # tickets raised online/by e-mail outside business hours
OFF_HOURS_SPREAD_HOURS = 14
LATE_SHARE = 0.04                  # per SLA metric, before the department's factor
DEPARTMENT_LATE_FACTOR = (0.5, 2.0)
LATE_BUSINESS_HOURS = (0.5, 16.0)  # how far past a deadline a late step lands
ON_TIME_BUDGET_USE = (0.05, 0.95)  # share of the time to the deadline an on-time step uses
MIN_BUDGET_HOURS = 0.1             # less business time than this left: the step is late
FOLLOW_UP_HOURS = {                # business hours of a step that has no SLA target
    "first_response_at": (0.2, 4.0),
    "verified_at": (0.5, 6.0),
    "plan_at": (1.0, 8.0),
    "resolved_at": (2.0, 24.0),
    "result_fed_back_at": (0.5, 6.0),
    "closed_at": (1.0, 24.0),
}
STUCK_SHARE = 0.03                 # tickets that stopped at some step (an old open backlog)
PENDING_UNASSIGNED_SHARE = 0.5     # pending tickets without a handler yet
SATISFACTION_MISSING_SHARE = 0.2
TICKET_SATISFACTION_WEIGHTS = (0.03, 0.05, 0.12, 0.35, 0.45)   # 1..5, all steps on time
BREACHED_SATISFACTION_WEIGHTS = (0.15, 0.20, 0.30, 0.20, 0.15)  # 1..5, some step late
PAUSE_SHARE = 0.10                 # tickets that waited on the customer
SECOND_PAUSE_SHARE = 0.3           # of those, waited twice
OPEN_PAUSE_SHARE = 0.5             # pauses of tickets still open that are still running
OPEN_PAUSE_HOURS = (1.0, 8.0)      # business hours after verification an open ticket pauses
RESUME_HOURS = (4.0, 72.0)
MIN_PAUSE_GAP_MINUTES = 10

TYPE_WEIGHTS = (0.15, 0.30, 0.10, 0.15, 0.22, 0.08)            # order of TICKET_TYPES
CHANNEL_WEIGHTS = (0.40, 0.15, 0.05, 0.05, 0.30, 0.05)         # order of CHANNELS
PRIORITY_BY_TYPE = (                                           # urgent, important, general
    (0.25, 0.45, 0.30), (0.02, 0.18, 0.80), (0.01, 0.14, 0.85),
    (0.05, 0.35, 0.60), (0.30, 0.40, 0.30), (0.02, 0.10, 0.88),
)
CATEGORY_BY_TYPE = (  # product_function, quality_failure, service_process, staff_attitude, other
    (0.15, 0.30, 0.30, 0.20, 0.05), (0.70, 0.05, 0.15, 0.00, 0.10),
    (0.60, 0.05, 0.25, 0.02, 0.08), (0.75, 0.00, 0.15, 0.00, 0.10),
    (0.10, 0.85, 0.03, 0.00, 0.02), (0.10, 0.05, 0.30, 0.05, 0.50),
)

# Visits: what becomes of a due visit
FATES = ("on_time", "late", "missed", "unreachable", "refused", "early")
FATE_WEIGHTS = (0.85, 0.06, 0.03, 0.03, 0.02, 0.01)
EARLY_VISIT_WORKING_DAYS = (1, 3)  # an early visit: reached this long before its window opens
FAILED_BEFORE_REACH_WEIGHTS = (0.80, 0.14, 0.06)  # 0, 1, 2 failed attempts before reaching
UNREACHABLE_ATTEMPTS = (3, 4)
UNREACHABLE_GAP_WORKING_DAYS = (1, 2)
LATE_VISIT_WORKING_DAYS = (1, 15)
FAILED_OUTCOME_WEIGHTS = {"no_answer": 0.70, "rescheduled": 0.22, "wrong_number": 0.08}
UNREACHABLE_OUTCOME_WEIGHTS = {"no_answer": 0.80, "wrong_number": 0.20}
METHOD_WEIGHTS = (0.70, 0.05, 0.08, 0.05, 0.04, 0.08)      # order of VISIT_METHODS
KEY_METHOD_WEIGHTS = (0.50, 0.05, 0.30, 0.03, 0.02, 0.10)
VISIT_SATISFACTION_WEIGHTS = (0.01, 0.01, 0.02, 0.02, 0.04, 0.06, 0.10, 0.20, 0.24, 0.30)

# Id widths (zero-padded so ids sort as numbers do)
ID_WIDTHS = {"D": 2, "A": 4, "C": 7, "O": 9, "T": 9, "V": 10}
TABLE_ORDER = ("departments", "agents", "customers", "orders", "tickets", "ticket_pauses",
               "visits")
DEFAULT_URL = f"sqlite:///{PROJECT_ROOT / 'output' / 'demo' / 'crm.sqlite'}"

Columns = dict[str, np.ndarray]  # one table (or chunk of it) as numpy columns
_SHIFT = np.int64(2**34)  # customer * _SHIFT + epoch seconds: one sortable key per visit
_SECOND = np.timedelta64(1, "s")
_MINUTE = np.timedelta64(60, "s")


# ================================================================= realistic vocabulary
def _pinyin_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """'王wang 李li' -> (('王', 'wang'), ('李', 'li')): characters with their pinyin."""
    return tuple((token[0], token[1:]) for token in text.split())


SURNAMES = _pinyin_pairs(
    "王wang 李li 张zhang 刘liu 陈chen 杨yang 黄huang 赵zhao 吴wu 周zhou 徐xu 孙sun 马ma "
    "朱zhu 胡hu 郭guo 何he 高gao 林lin 罗luo 郑zheng 梁liang 谢xie 宋song 唐tang 许xu "
    "韩han 冯feng 邓deng 曹cao 彭peng 曾zeng 肖xiao 田tian 董dong 袁yuan 潘pan 于yu "
    "蒋jiang 蔡cai 余yu 杜du 叶ye 程cheng 苏su 魏wei 吕lv 丁ding 任ren 沈shen 姚yao "
    "卢lu 姜jiang 崔cui 钟zhong 谭tan 陆lu 汪wang 范fan 金jin 石shi 廖liao 贾jia 夏xia "
    "韦wei 付fu 方fang 白bai 邹zou 孟meng 熊xiong 秦qin 邱qiu 江jiang 尹yin 薛xue 闫yan "
    "段duan 雷lei 侯hou 龙long 史shi 陶tao 黎li 贺he 顾gu 毛mao 郝hao 龚gong 邵shao 万wan "
    "钱qian 严yan 覃qin 武wu 戴dai 莫mo 孔kong 向xiang 汤tang"
)
GIVEN_CHARS = _pinyin_pairs(
    "伟wei 芳fang 娜na 敏min 静jing 丽li 强qiang 磊lei 军jun 洋yang 勇yong 艳yan 杰jie "
    "娟juan 涛tao 明ming 超chao 秀xiu 霞xia 平ping 刚gang 桂gui 英ying 华hua 玉yu 萍ping "
    "红hong 建jian 文wen 辉hui 鹏peng 宇yu 浩hao 婷ting 雪xue 琳lin 晨chen 欣xin 博bo "
    "峰feng 斌bin 凯kai 健jian 俊jun 帆fan 颖ying 佳jia 悦yue 然ran 轩xuan 涵han 梓zi "
    "子zi 思si 怡yi 嘉jia 昊hao 天tian 若ruo 瑶yao 晓xiao 志zhi 海hai 国guo 东dong "
    "春chun 丹dan 亮liang 慧hui 琪qi 宁ning 婧jing 睿rui 泽ze 翔xiang 诗shi 雨yu 梦meng "
    "家jia 新xin 永yong 世shi 立li 成cheng 荣rong 波bo 斐fei"
)
SINGLE_CHAR_GIVEN_SHARE = 0.35
TRADE_NAME_CHARS = _pinyin_pairs(  # 字号: two of these make a company's trade name
    "华hua 宏hong 恒heng 瑞rui 鼎ding 金jin 联lian 博bo 天tian 中zhong 新xin 汇hui 永yong "
    "嘉jia 盛sheng 锦jin 富fu 东dong 星xing 卓zhuo 明ming 启qi 同tong 安an 鑫xin 正zheng "
    "海hai 智zhi 德de 昊hao 泰tai 润run 信xin 达da 通tong 远yuan 创chuang 源yuan 祥xiang "
    "隆long 和he 兴xing 丰feng 益yi 佳jia 诚cheng 康kang 凯kai 腾teng 航hang 宇yu 晟sheng "
    "睿rui 拓tuo 致zhi 立li 辰chen 维wei 骏jun 弘hong"
)
# (industry, word in the company name, domain slug)
INDUSTRIES = (
    ("制造业", "机械设备", "machinery"), ("电子信息", "电子科技", "tech"),
    ("软件和信息技术服务", "信息技术", "it"), ("批发零售", "商贸", "trading"),
    ("物流运输", "物流", "logistics"), ("医疗健康", "医疗器械", "medical"),
    ("教育培训", "教育科技", "edu"), ("金融服务", "投资管理", "capital"),
    ("建筑工程", "建设工程", "construction"), ("新能源", "新能源科技", "energy"),
    ("餐饮酒店", "餐饮管理", "catering"), ("汽车及零部件", "汽车零部件", "auto"),
    ("化工", "化工", "chem"), ("食品饮料", "食品", "food"), ("纺织服装", "服饰", "fashion"),
    ("房地产", "置业", "property"), ("农业", "农业科技", "agri"), ("文化传媒", "文化传媒", "media"),
)
COMPANY_SUFFIXES = ("有限公司", "股份有限公司", "集团有限公司")
COMPANY_SUFFIX_WEIGHTS = (0.85, 0.10, 0.05)
DOMAIN_TLDS = (".com", ".cn", ".com.cn")
DOMAIN_TLD_WEIGHTS = (0.60, 0.25, 0.15)
FREE_MAIL_DOMAINS = ("163.com", "126.com")
# (department name, cities of its region (space-separated), share of customers)
DEPARTMENTS = (
    ("华东客户服务部", "上海 杭州 苏州 南京 宁波 无锡 常州 温州 绍兴 合肥", 0.32),
    ("华南客户服务部", "广州 深圳 东莞 佛山 厦门 福州 珠海 南宁 海口", 0.24),
    ("华北客户服务部", "北京 天津 石家庄 太原 济南 青岛 沈阳 大连", 0.18),
    ("西南客户服务部", "成都 重庆 昆明 贵阳 绵阳", 0.10),
    ("华中客户服务部", "武汉 长沙 郑州 南昌 宜昌 洛阳", 0.10),
    ("西北客户服务部", "西安 兰州 银川 西宁 乌鲁木齐", 0.06),
)
CONTACT_TITLES = ("总经理", "副总经理", "采购经理", "采购主管", "技术总监", "IT经理", "信息部主管",
                  "运营总监", "行政经理", "财务经理", "项目经理", "生产经理", "质量经理")
CONTACT_TITLE_WEIGHTS = (0.08, 0.06, 0.16, 0.10, 0.10, 0.12, 0.08, 0.06, 0.06, 0.05, 0.08,
                         0.03, 0.02)
SOURCES = ("转介绍", "展会", "线上推广", "老客户推荐", "电话营销", "官网咨询", "渠道合作")
SOURCE_WEIGHTS = (0.18, 0.14, 0.22, 0.16, 0.10, 0.12, 0.08)
MOBILE_PREFIXES = (130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 145, 147, 150, 151, 152,
                   153, 155, 156, 157, 158, 159, 166, 171, 173, 175, 176, 177, 178, 180, 181,
                   182, 183, 184, 185, 186, 187, 188, 189, 191, 198, 199)
# (product, list price in CNY)
PRODUCTS = (
    ("云客服系统", 38_000), ("智能仓储管理系统", 120_000), ("ERP企业版", 260_000),
    ("财务共享平台", 150_000), ("移动办公套件", 18_000), ("数据分析平台", 90_000),
    ("安防监控系统", 65_000), ("工业物联网网关", 12_000), ("客户关系管理系统", 56_000),
    ("供应链协同平台", 180_000), ("智能门禁终端", 8_000), ("电子签章服务", 15_000),
    ("人力资源管理系统", 72_000), ("生产执行系统MES", 320_000), ("能耗监测平台", 45_000),
)
PRODUCT_MAJOR_VERSIONS = (1, 6)    # V1.x .. V5.x
TICKET_PHRASES = {  # by ticket type
    "complaint": ("售后响应太慢，多次催促无人跟进", "上门服务人员态度差，要求更换工程师",
                  "发票迟迟未开具，影响报销", "系统故障影响正常业务，要求给出补偿方案",
                  "交付延期，影响项目上线"),
    "consultation": ("咨询新版本功能及升级费用", "询问数据导出方式", "咨询账号权限如何配置",
                     "询问续费政策", "咨询培训课程安排"),
    "suggestion": ("建议增加移动端审批功能", "建议报表支持自定义字段", "建议优化界面操作流程",
                   "希望提供英文版界面"),
    "requirement": ("需要对接企业微信", "要求增加批量导入功能", "需要开通更多用户账号",
                    "需定制打印模板"),
    "repair": ("设备无法开机", "系统频繁报错，无法登录", "网关离线，数据不上传", "打印模块故障",
               "升级后数据显示异常"),
    "other": ("变更联系人信息", "申请开具发票", "合同盖章事宜", "其他事项咨询"),
}
VISIT_NOTES = {  # reached visits by kind; other outcomes by outcome
    "welcome": ("客户已收到首单产品，确认对接人并介绍售后渠道", "欢迎回访完成，客户对交付流程满意"),
    "early_use": ("客户反馈初期使用顺利，已安排线上培训", "初期使用有少量操作疑问，已现场解答"),
    "stable_use": ("系统运行稳定，客户提出报表优化建议", "使用情况良好，客户关注后续升级计划"),
    "long_term": ("长期使用稳定，客户有扩容意向", "客户对产品整体满意，建议增加移动端功能"),
    "post_resolution": ("问题已解决，客户确认恢复正常", "回访确认处理结果，客户表示认可"),
    "periodic": ("定期回访，客户近期无新问题", "例行沟通，客户咨询续费事宜"),
    "key_account": ("大客户定期沟通，了解明年采购计划", "高层拜访，客户对服务团队评价较好"),
    "new_product": ("客户首次采购该产品，已确认安装及培训安排", "新产品试用顺利，客户关注功能扩展"),
    "major_complaint": ("已致电安抚客户情绪，说明处理进度", "客户投诉正在处理，已告知预计完成时间"),
    "product_upgrade": ("已介绍升级内容，客户预约升级时间", "升级后功能体验良好，客户表示满意"),
    "no_answer": ("电话无人接听，稍后再拨", "多次拨打未接通"),
    "wrong_number": ("号码为空号，需核实联系方式", "接听人表示不是本人，号码有误"),
    "refused": ("客户表示暂不需要回访", "客户拒绝沟通，已记录"),
    "rescheduled": ("客户在开会，约定改天回访", "客户出差，改约下周联系"),
}


# ================================================================= small pure helpers
def _choice(rng: np.random.Generator, values: Sequence[Any], size: int,
            weights: Sequence[float] | None = None) -> np.ndarray:
    """`size` draws from `values` (object array), optionally weighted; weights need not sum 1."""
    p = None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=size, p=p)]


def _codes(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    """`size` category codes 0..len(weights)-1 drawn with the given weights."""
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _codes_by_row(rng: np.random.Generator, matrix: Sequence[Sequence[float]],
                  rows: np.ndarray) -> np.ndarray:
    """One code per element of `rows`, drawn from that row of a probability matrix
    (e.g. priority given the ticket type)."""
    probs = np.asarray(matrix, dtype=float)
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(len(rows))
    return np.minimum((u[:, None] >= cum[rows]).sum(axis=1), probs.shape[1] - 1)


def _between(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A uniform integer in [low, high] per element (high < low gives low)."""
    span = np.maximum(np.asarray(high) - np.asarray(low), 0) + 1
    return np.asarray(low) + (rng.random(len(span)) * span).astype(np.int64)


def make_ids(prefix: str, first: int, count: int) -> np.ndarray:
    """Ids prefix + zero-padded number (width from ID_WIDTHS) so they sort as numbers do."""
    width = ID_WIDTHS[prefix]
    if count and first + count - 1 >= 10**width:
        raise ValueError(f"ids {prefix}: more than {10**width - 1} rows do not fit the id width")
    if count == 0:  # np.char.zfill fails on an empty array (a chunk without tickets)
        return np.empty(0, dtype=object)
    numbers = np.arange(first, first + count, dtype=np.int64).astype(str)
    return np.char.add(prefix, np.char.zfill(numbers, width)).astype(object)


def _cumcount(counts: np.ndarray) -> np.ndarray:
    """0, 1, .., n-1 for each group of np.repeat(..., counts): the element's rank in its group."""
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    return np.arange(total) - np.repeat(starts, counts)


def _nullable(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Object array with None where mask (a NULL in the CRM)."""
    out = values.astype(object)
    out[mask] = None
    return out


def _seconds(values: np.ndarray) -> np.ndarray:
    """datetime64 -> int64 epoch seconds (for sortable keys)."""
    return values.astype("datetime64[s]").astype(np.int64)


def _nat_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise earliest of two datetime arrays, NaT meaning 'no value'."""
    return np.where(np.isnat(a), b, np.where(np.isnat(b), a, np.minimum(a, b)))


def _person_names(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Chinese names (surname + 1-2 given characters) and 'given.surname' pinyin for e-mails.
    Surnames follow a Zipf-like frequency, as real ones do."""
    surname_weights = 1.0 / (np.arange(len(SURNAMES)) + 5.0)
    s = _codes(rng, surname_weights, size)
    g1 = rng.integers(0, len(GIVEN_CHARS), size)
    g2 = rng.integers(0, len(GIVEN_CHARS), size)
    single = rng.random(size) < SINGLE_CHAR_GIVEN_SHARE
    sur_cn = np.array([c for c, _ in SURNAMES], dtype=object)
    sur_py = np.array([p for _, p in SURNAMES], dtype=object)
    giv_cn = np.array([c for c, _ in GIVEN_CHARS], dtype=object)
    giv_py = np.array([p for _, p in GIVEN_CHARS], dtype=object)
    second_cn = np.where(single, "", giv_cn[g2])
    second_py = np.where(single, "", giv_py[g2])
    names = sur_cn[s] + giv_cn[g1] + second_cn
    local = giv_py[g1] + second_py + "." + sur_py[s]
    return names, local


def _staff_emails(local: np.ndarray) -> np.ndarray:
    """Staff e-mails on the reserved demo domain; namesakes get a number (wei.wang2@...)."""
    dup = pd.Series(local).groupby(pd.Series(local)).cumcount().to_numpy()
    suffix = np.where(dup > 0, (dup + 1).astype(str), "")
    return local + suffix.astype(object) + "@" + STAFF_EMAIL_DOMAIN


def _subtract_ranges(keep: list[tuple[int, int]],
                     remove: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Minute ranges of `keep` not covered by `remove` (call windows = hours minus avoid)."""
    out = list(keep)
    for r_start, r_end in remove:
        nxt = []
        for start, end in out:
            if r_end <= start or r_start >= end:
                nxt.append((start, end))
                continue
            if start < r_start:
                nxt.append((start, r_start))
            if r_end < end:
                nxt.append((r_end, end))
        out = nxt
    return out


# ================================================================= the world: calendar and span
@dataclass(frozen=True)
class _Pool:
    """Values grouped by a code (e.g. agents by department), for one vectorised pick per row."""

    flat: np.ndarray
    start: np.ndarray
    size: np.ndarray

    @classmethod
    def of(cls, groups: Sequence[Sequence[Any]]) -> _Pool:
        sizes = np.array([len(g) for g in groups], dtype=np.int64)
        flat = np.empty(int(sizes.sum()), dtype=object)
        flat[:] = [v for g in groups for v in g]
        return cls(flat=flat, start=np.cumsum(sizes) - sizes, size=sizes)

    def pick(self, rng: np.random.Generator, codes: np.ndarray) -> np.ndarray:
        if (self.size[codes] == 0).any():
            raise ValueError("a group to pick from is empty")
        offset = (rng.random(len(codes)) * self.size[codes]).astype(np.int64)
        return self.flat[self.start[codes] + offset]


@dataclass(frozen=True)
class _World:
    """Calendar, policy and the time span every generated stamp lies in."""

    policy: Policy
    calendar: BusinessCalendar
    as_of: dt.date
    days: np.ndarray = field(repr=False)      # working days, datetime64[D]
    horizon: np.datetime64 = field(init=False)  # as_of + 1 day 00:00: every stamp is before it
    history_start: np.datetime64 = field(init=False)
    first_pos: int = field(init=False)         # first working day of the history
    last_pos: int = field(init=False)          # last working day on or before as_of
    hours: np.ndarray = field(init=False)      # business intervals, minutes (k, 2)
    call_hours: np.ndarray = field(init=False)  # business hours minus the call-window avoid list

    def __post_init__(self) -> None:
        as_of = np.datetime64(self.as_of, "D")
        history_start = as_of - np.timedelta64(HISTORY_DAYS, "D")
        set_ = object.__setattr__
        set_(self, "horizon", (as_of + np.timedelta64(1, "D")).astype("datetime64[s]"))
        set_(self, "history_start", history_start)
        set_(self, "first_pos", int(np.searchsorted(self.days, history_start, "left")))
        set_(self, "last_pos", int(np.searchsorted(self.days, as_of, "right")) - 1)
        hours = [(h.start, h.end) for h in self.policy.calendar.hours]
        avoid = [(r.start, r.end) for r in self.policy.call_windows.avoid]
        set_(self, "hours", np.array(hours, dtype=np.int64))
        set_(self, "call_hours", np.array(_subtract_ranges(hours, avoid) or hours, dtype=np.int64))

    # ------------------------------------------------------------- positions in working days
    def on_or_after(self, days: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.days, days.astype("datetime64[D]"), "left")

    def after(self, days: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.days, days.astype("datetime64[D]"), "right")

    def instants(self, rng: np.random.Generator, pos: np.ndarray,
                 calls: bool = False) -> np.ndarray:
        """A random time of day within business hours (or call windows) on working day `pos`."""
        intervals = self.call_hours if calls else self.hours
        lengths = (intervals[:, 1] - intervals[:, 0]) * 60
        cum = np.cumsum(lengths)
        u = (rng.random(len(pos)) * cum[-1]).astype(np.int64)
        i = np.searchsorted(cum, u, "right")
        offset = intervals[i, 0] * 60 + u - (cum[i] - lengths[i])
        return self.days[pos].astype("datetime64[s]") + offset.astype("timedelta64[s]")

    # ------------------------------------------------------------- the calendar's clocks
    def add_business_hours(self, start: np.ndarray, hours: np.ndarray) -> np.ndarray:
        if len(start) == 0:
            return start.astype("datetime64[s]")
        return _naive(self.calendar.add_business_hours(pd.Series(start), hours))

    def add(self, start: np.ndarray, duration: Duration) -> np.ndarray:
        if len(start) == 0:
            return start.astype("datetime64[s]")
        return _naive(self.calendar.add(pd.Series(start), duration))

    def business_hours_between(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        if len(start) == 0:
            return np.zeros(0)
        delta = self.calendar.business_time_between(pd.Series(start), pd.Series(end))
        return delta.dt.total_seconds().to_numpy() / 3600.0

    # ------------------------------------------------------------- visit windows
    def offset(self, anchor: np.ndarray, duration: Duration) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray]:
        """Day `duration` after each anchor day, with the first working day on or after it
        and the last working day on or before it (positions)."""
        n = int(duration.amount)
        if duration.unit == "working_days":
            pos = self.after(anchor) + n - 1 if n else self.on_or_after(anchor)
            return self.days[pos], pos, pos
        day = anchor.astype("datetime64[D]") + np.timedelta64(n, "D")
        return day, self.on_or_after(day), self.after(day) - 1

    def window(self, anchor: np.ndarray, rule: WindowRule) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
        """(first day, first working-day position, last working-day position) of a visit
        window opened by each anchor day, as DESIGN.md defines it."""
        start_day, start_pos, _ = self.offset(anchor, rule.start)
        if rule.end is not None:
            _, _, end_pos = self.offset(anchor, rule.end)
        else:
            assert rule.length is not None
            _, _, end_pos = self.offset(start_day, rule.length)
        return start_day, start_pos, np.maximum(end_pos, start_pos)


def _naive(series: pd.Series) -> np.ndarray:
    """Calendar result (tz-aware) -> naive local datetime64[s], floored to the second."""
    return series.dt.tz_localize(None).to_numpy().astype("datetime64[s]")


@lru_cache(maxsize=2)
def _default_calendar() -> tuple[Policy, BusinessCalendar]:
    """The project's default policy and its calendar, built once (holidays take ~0.5 s)."""
    policy = load_policy(DEFAULT_POLICY_PATH)
    return policy, BusinessCalendar(policy.calendar)


def _world(as_of: dt.date, policy: Policy | None) -> _World:
    if policy is None:
        policy, calendar = _default_calendar()
    else:
        calendar = BusinessCalendar(policy.calendar)
    first_year, last_year = calendar.years
    if as_of.year - COOPERATION_YEARS - 1 < first_year or as_of.year + 1 > last_year:
        raise ValueError(f"as_of {as_of} is outside the calendar's years {first_year}-{last_year}")
    return _World(policy=policy, calendar=calendar, as_of=as_of, days=calendar.working_days)


# ================================================================= organisation
@dataclass(frozen=True)
class _Org:
    departments: Columns
    agents: Columns
    dept_ids: np.ndarray
    weights: np.ndarray           # share of customers per department
    late_factor: np.ndarray       # per department: how often its tickets run late
    cities: _Pool                 # per department
    owners: _Pool                 # role agent, active or not (customers of leavers stay theirs)
    active_agents: _Pool          # role agent, active
    handlers: _Pool               # active, any role
    supervisors: _Pool            # active supervisors
    agent_ids: np.ndarray
    agent_active: np.ndarray


def _organisation(rng: np.random.Generator, customers: int) -> _Org:
    """Departments (4-6, each with a head) and their supervisors and agents."""
    n_dept = int(rng.integers(DEPARTMENT_COUNT[0], DEPARTMENT_COUNT[1] + 1))
    chosen = DEPARTMENTS[:n_dept]
    weights = np.array([w for _, _, w in chosen])
    weights = weights / weights.sum()
    head_names, head_local = _person_names(rng, n_dept)
    dept_ids = make_ids("D", 1, n_dept)
    departments = {
        "department_id": dept_ids,
        "name": np.array([name for name, _, _ in chosen], dtype=object),
        "head_name": head_names,
        "head_email": _staff_emails(head_local),
    }
    n_sup = rng.integers(SUPERVISORS_PER_DEPARTMENT[0], SUPERVISORS_PER_DEPARTMENT[1] + 1, n_dept)
    n_agents = np.maximum(MIN_AGENTS_PER_DEPARTMENT,
                          np.round(customers * weights / CUSTOMERS_PER_AGENT)).astype(np.int64)
    per_dept = n_sup + n_agents
    dept = np.repeat(np.arange(n_dept), per_dept)
    rank = _cumcount(per_dept)
    is_sup = rank < n_sup[dept]
    total = len(dept)
    # Leavers: never a department's first agent, so every department keeps an active agent.
    inactive = ~is_sup & (rank > n_sup[dept]) & (rng.random(total) < INACTIVE_AGENT_SHARE)
    if not inactive.any() and (n_agents > 1).any():
        inactive[np.flatnonzero(~is_sup & (rank > n_sup[dept]))[-1]] = True
    capacity = rng.choice(np.array(CAPACITY_CHOICES), size=total)
    has_capacity = rng.random(total) < CAPACITY_SET_SHARE
    names, local = _person_names(rng, total)
    agent_ids = make_ids("A", 1, total)
    agents = {
        "agent_id": agent_ids,
        "name": names,
        "email": _staff_emails(local),
        "department_id": dept_ids[dept],
        "role": np.where(is_sup, "supervisor", "agent").astype(object),
        "active": (~inactive).astype(np.int8),
        "daily_capacity": _nullable(capacity, ~has_capacity),
    }
    index = np.arange(total)

    def pool(mask: np.ndarray) -> _Pool:
        return _Pool.of([index[mask & (dept == d)] for d in range(n_dept)])

    return _Org(
        departments=departments, agents=agents, dept_ids=dept_ids, weights=weights,
        late_factor=rng.uniform(*DEPARTMENT_LATE_FACTOR, n_dept),
        cities=_Pool.of([cities.split() for _, cities, _ in chosen]),
        owners=pool(~is_sup), active_agents=pool(~is_sup & ~inactive),
        handlers=pool(~inactive), supervisors=pool(is_sup & ~inactive),
        agent_ids=agent_ids, agent_active=~inactive,
    )


# ================================================================= customers
@dataclass(frozen=True)
class _Customers:
    columns: Columns
    ids: np.ndarray
    dept: np.ndarray
    key: np.ndarray
    new: np.ndarray
    coop_pos: np.ndarray
    created_at: np.ndarray
    visit_agent: np.ndarray       # agent index who makes this customer's visits


def _customers(world: _World, org: _Org, rng: np.random.Generator, first: int,
               count: int) -> _Customers:
    dept = _codes(rng, org.weights, count)
    key = rng.random(count) < KEY_TIER_SHARE
    new = rng.random(count) < NEW_CUSTOMER_SHARE
    oldest = world.on_or_after(np.array([world.history_start - np.timedelta64(
        COOPERATION_YEARS * 365, "D")]))[0]
    coop_pos = np.where(new, _between(rng, np.full(count, world.first_pos),
                                      np.full(count, world.last_pos - 1)),
                        _between(rng, np.full(count, oldest), np.full(count, world.first_pos - 1)))
    created_pos = coop_pos - _between(rng, np.full(count, LEAD_WORKING_DAYS[0]),
                                      np.full(count, LEAD_WORKING_DAYS[1]))
    created_at = world.instants(rng, created_pos)
    updated_at = np.maximum(world.instants(rng, _between(rng, created_pos,
                                                         np.full(count, world.last_pos))),
                            created_at)
    owner = org.owners.pick(rng, dept).astype(np.int64)
    visit_agent = owner.copy()
    leaver = ~org.agent_active[owner]
    visit_agent[leaver] = org.active_agents.pick(rng, dept[leaver]).astype(np.int64)
    to_sup = key & (rng.random(count) < KEY_TIER_TO_SUPERVISOR_SHARE)
    visit_agent[to_sup] = org.supervisors.pick(rng, dept[to_sup]).astype(np.int64)

    industry = rng.integers(0, len(INDUSTRIES), count)
    t1 = rng.integers(0, len(TRADE_NAME_CHARS), count)
    t2 = (t1 + rng.integers(1, len(TRADE_NAME_CHARS), count)) % len(TRADE_NAME_CHARS)
    trade_cn = np.array([c for c, _ in TRADE_NAME_CHARS], dtype=object)
    trade_py = np.array([p for _, p in TRADE_NAME_CHARS], dtype=object)
    ind_name = np.array([n for n, _, _ in INDUSTRIES], dtype=object)
    ind_word = np.array([w for _, w, _ in INDUSTRIES], dtype=object)
    ind_slug = np.array([s for _, _, s in INDUSTRIES], dtype=object)
    name = (org.cities.pick(rng, dept) + trade_cn[t1] + trade_cn[t2] + ind_word[industry]
            + _choice(rng, COMPANY_SUFFIXES, count, COMPANY_SUFFIX_WEIGHTS))
    domain = (trade_py[t1] + trade_py[t2] + "-" + ind_slug[industry]
              + _choice(rng, DOMAIN_TLDS, count, DOMAIN_TLD_WEIGHTS))
    contact, local = _person_names(rng, count)
    email_kind = _codes(rng, EMAIL_KIND_WEIGHTS, count)
    netease = (np.char.replace(local.astype(str), ".", "").astype(object)
               + rng.integers(10, 10_000, count).astype(str).astype(object) + "@"
               + _choice(rng, FREE_MAIL_DOMAINS, count))
    qq = rng.integers(10_000_000, 3_000_000_000, count).astype(str).astype(object) + "@qq.com"
    email = np.select([email_kind == 0, email_kind == 1, email_kind == 2],
                      [local + "@" + domain, netease, qq], default=None)
    phone = (np.asarray(MOBILE_PREFIXES, dtype=np.int64)[rng.integers(0, len(MOBILE_PREFIXES),
                                                                    count)] * 10**8
             + rng.integers(0, 10**8, count)).astype(str).astype(object)
    ids = make_ids("C", first + 1, count)
    columns = {
        "customer_id": ids,
        "name": name,
        "industry": ind_name[industry],
        "contact_name": contact,
        "contact_title": _choice(rng, CONTACT_TITLES, count, CONTACT_TITLE_WEIGHTS),
        "phone": phone,
        "email": email,
        "source": _choice(rng, SOURCES, count, SOURCE_WEIGHTS),
        "tier": np.where(key, "key", "standard").astype(object),
        "owner_agent_id": org.agent_ids[owner],
        "department_id": org.dept_ids[dept],
        "cooperation_start_date": world.days[coop_pos].astype("datetime64[s]"),
        "do_not_call": (rng.random(count) < DO_NOT_CALL_SHARE).astype(np.int8),
        "created_at": created_at,
        "updated_at": updated_at,
    }
    return _Customers(columns=columns, ids=ids, dept=dept, key=key, new=new, coop_pos=coop_pos,
                      created_at=created_at, visit_agent=visit_agent)


# ================================================================= orders
@dataclass(frozen=True)
class _Orders:
    customer: np.ndarray          # chunk-local customer index, orders grouped by customer
    first: np.ndarray             # per customer: index of its first order row (grouped layout)
    count: np.ndarray             # per customer: number of orders
    pos: np.ndarray
    ordered_at: np.ndarray
    delivered_at: np.ndarray
    product: np.ndarray
    version: np.ndarray
    amount: np.ndarray


def _orders(world: _World, rng: np.random.Generator, cust: _Customers) -> _Orders:
    n_cust = len(cust.new)
    count = np.where(cust.new, 1 + rng.poisson(NEW_CUSTOMER_EXTRA_ORDERS, n_cust),
                     rng.poisson(OLD_CUSTOMER_ORDERS, n_cust))
    c = np.repeat(np.arange(n_cust), count)
    rank = _cumcount(count)
    n = len(c)
    low = np.maximum(world.first_pos, cust.coop_pos[c])
    pos = _between(rng, low, np.full(n, world.last_pos))
    first_of_new = cust.new[c] & (rank == 0)
    soon = np.minimum(cust.coop_pos[c] + rng.integers(0, FIRST_ORDER_WORKING_DAYS + 1, n),
                      world.last_pos)
    pos = np.where(first_of_new, soon, pos)
    ordered_at = world.instants(rng, pos)
    delivered_pos = pos + rng.integers(DELIVERY_WORKING_DAYS[0], DELIVERY_WORKING_DAYS[1] + 1, n)
    delivered_at = world.instants(rng, delivered_pos)
    never = (delivered_at >= world.horizon) | (rng.random(n) < UNDELIVERED_SHARE)
    delivered_at[never] = np.datetime64("NaT")
    product = rng.integers(0, len(PRODUCTS), n)
    major = rng.integers(PRODUCT_MAJOR_VERSIONS[0], PRODUCT_MAJOR_VERSIONS[1], n)
    version = ("V" + major.astype(str).astype(object) + "."
               + rng.integers(0, 10, n).astype(str).astype(object))
    price = np.array([p for _, p in PRODUCTS], dtype=float)[product]
    amount = np.maximum(100.0, np.round(price * rng.lognormal(0.0, AMOUNT_SPREAD, n), -2))
    return _Orders(customer=c, first=np.cumsum(count) - count, count=count, pos=pos,
                   ordered_at=ordered_at, delivered_at=delivered_at,
                   product=np.array([p for p, _ in PRODUCTS], dtype=object)[product],
                   version=version, amount=amount)


# ================================================================= tickets
@dataclass(frozen=True)
class _Tickets:
    customer: np.ndarray
    order: np.ndarray             # order row (grouped layout), -1 = none
    type: np.ndarray              # codes into TICKET_TYPES
    stamps: np.ndarray            # (n, len(TICKET_STAMPS)) datetime64[s], NaT = not yet
    columns: Columns              # without ticket_id, order_id (assigned after sorting)


def _stamp_deadline(world: _World, stamps: dict[str, np.ndarray], achieved: str,
                    priority: np.ndarray) -> np.ndarray:
    """Earliest SLA deadline of the metrics achieved by stamp `achieved` (NaT: no target)."""
    n = len(priority)
    deadline = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
    sla = world.policy.sla
    for metric, spec in sla.metrics.items():
        if spec.achieved != achieved or spec.start not in stamps:
            continue
        for code, name in enumerate(PRIORITIES):
            target = sla.targets[name].get(metric)
            rows = np.flatnonzero(priority == code)
            if target is None or not len(rows):
                continue
            deadline[rows] = _nat_min(deadline[rows], world.add(stamps[spec.start][rows], target))
    return deadline


def _next_stamp(world: _World, rng: np.random.Generator, prev: np.ndarray, cap: np.ndarray,
                own: np.ndarray, late: np.ndarray, follow_up: tuple[float, float]) -> np.ndarray:
    """The next step of a ticket. On time: a share of the business time left before `cap`
    (its own deadline or a later step's, whichever is first, so one step does not doom the
    next). Late: a while past its own deadline. No deadline at all: a plausible delay."""
    n = len(prev)
    u = rng.uniform(*ON_TIME_BUDGET_USE, n)
    late_hours = rng.uniform(*LATE_BUSINESS_HOURS, n)
    out = world.add_business_hours(prev, rng.uniform(*follow_up, n))
    late = late & ~np.isnat(own)
    capped = np.flatnonzero(~np.isnat(cap) & ~late)
    budget = world.business_hours_between(prev[capped], cap[capped])
    in_hours = capped[budget > MIN_BUDGET_HOURS]
    out[in_hours] = world.add_business_hours(prev[in_hours],
                                             budget[budget > MIN_BUDGET_HOURS] * u[in_hours])
    # No business time left but still time on the clock (urgent, 24 wall hours): overtime.
    overtime = capped[(budget <= MIN_BUDGET_HOURS) & (cap[capped] - prev[capped] > _MINUTE)]
    out[overtime] = prev[overtime] + ((cap[overtime] - prev[overtime]).astype(np.int64)
                                      * u[overtime]).astype("timedelta64[s]")
    on_time = np.zeros(n, dtype=bool)
    on_time[in_hours] = on_time[overtime] = True
    overdue = np.flatnonzero(~np.isnat(own) & ~on_time)
    out[overdue] = np.maximum(world.add_business_hours(own[overdue], late_hours[overdue]),
                              out[overdue])
    return out


def _ticket_stamps(world: _World, rng: np.random.Generator, created: np.ndarray,
                   priority: np.ndarray, late_rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The full life of each ticket (created -> closed) against the policy's SLA targets,
    and whether any targeted step was late."""
    first = TICKET_STAMPS[0]
    stamps = {first: created}
    # Deadlines known at creation, to cap the steps before them.
    upfront = {name: _stamp_deadline(world, stamps, name, priority) for name in TICKET_STAMPS[1:]}
    any_late = np.zeros(len(created), dtype=bool)
    for i, (before, name) in enumerate(itertools.pairwise(TICKET_STAMPS)):
        own = _stamp_deadline(world, stamps, name, priority)
        cap = own
        for later in TICKET_STAMPS[i + 2:]:
            cap = _nat_min(cap, upfront[later])
        late = rng.random(len(created)) < late_rate
        any_late |= late & ~np.isnat(own)
        stamps[name] = _next_stamp(world, rng, stamps[before], cap, own, late,
                                   FOLLOW_UP_HOURS[name])
    return np.column_stack([stamps[name] for name in TICKET_STAMPS]), any_late


def _truncate(world: _World, rng: np.random.Generator, stamps: np.ndarray) -> np.ndarray:
    """Blank what has not happened by the horizon, and the rest of the life of stuck tickets."""
    keep = np.logical_and.accumulate(stamps < world.horizon, axis=1)
    n, width = stamps.shape
    stuck = rng.random(n) < STUCK_SHARE
    stage = rng.integers(1, width, n)
    keep &= ~(stuck[:, None] & (np.arange(width)[None, :] >= stage[:, None]))
    out = stamps.copy()
    out[~keep] = np.datetime64("NaT")
    return out


def _status(stamps: np.ndarray) -> np.ndarray:
    """pending / in_progress / resolved / closed from the stamps a ticket has."""
    col = {name: i for i, name in enumerate(TICKET_STAMPS)}
    status = np.full(len(stamps), TICKET_STATUSES.index("pending"))
    for stamp, name in (("first_response_at", "in_progress"), ("resolved_at", "resolved"),
                        ("closed_at", "closed")):
        status[~np.isnat(stamps[:, col[stamp]])] = TICKET_STATUSES.index(name)
    return np.asarray(TICKET_STATUSES, dtype=object)[status]


def _tickets(world: _World, org: _Org, rng: np.random.Generator, cust: _Customers,
             orders: _Orders) -> _Tickets:
    n_cust = len(cust.new)
    c = np.repeat(np.arange(n_cust), rng.poisson(TICKETS_PER_CUSTOMER, n_cust))
    n = len(c)
    linked = (orders.count[c] > 0) & (rng.random(n) < TICKET_ORDER_LINK_SHARE)
    order = np.where(linked, orders.first[c]
                     + (rng.random(n) * np.maximum(orders.count[c], 1)).astype(np.int64), -1)
    safe_order = np.maximum(order, 0)
    order_pos = orders.pos[safe_order] if len(orders.pos) else np.zeros(n, dtype=np.int64)
    low = np.where(linked, order_pos,
                   np.maximum(world.first_pos, cust.coop_pos[c] - LEAD_WORKING_DAYS[0] + 1))
    high = np.where(linked, np.minimum(order_pos + TICKET_AFTER_ORDER_WORKING_DAYS,
                                       world.last_pos), world.last_pos)
    created = world.instants(rng, _between(rng, low, high))
    shift = rng.uniform(-OFF_HOURS_SPREAD_HOURS, OFF_HOURS_SPREAD_HOURS, n) * 3600
    off_hours = rng.random(n) < OFF_HOURS_SHARE
    created = created + np.where(off_hours, shift, 0).astype("timedelta64[s]")
    earliest = cust.created_at[c] + np.timedelta64(600, "s")
    if len(orders.ordered_at):
        earliest = np.where(linked, np.maximum(earliest, orders.ordered_at[safe_order]
                                               + np.timedelta64(600, "s")), earliest)
    created = np.minimum(np.maximum(created, earliest), world.horizon - np.timedelta64(60, "s"))

    ticket_type = _codes(rng, TYPE_WEIGHTS, n)
    priority = _codes_by_row(rng, PRIORITY_BY_TYPE, ticket_type)
    category = _codes_by_row(rng, CATEGORY_BY_TYPE, ticket_type)
    dept = cust.dept[c]
    full, any_late = _ticket_stamps(world, rng, created, priority,
                                    LATE_SHARE * org.late_factor[dept])
    stamps = _truncate(world, rng, full)
    status = _status(stamps)
    closed = status == "closed"
    score = np.where(any_late, _codes(rng, BREACHED_SATISFACTION_WEIGHTS, n),
                     _codes(rng, TICKET_SATISFACTION_WEIGHTS, n)) + 1
    rated = closed & (rng.random(n) >= SATISFACTION_MISSING_SHARE)
    handler = org.agent_ids[org.handlers.pick(rng, dept).astype(np.int64)]
    unassigned = (status == "pending") & (rng.random(n) < PENDING_UNASSIGNED_SHARE)
    phrase_pool = _Pool.of([TICKET_PHRASES[t] for t in TICKET_TYPES])
    phrase = phrase_pool.pick(rng, ticket_type)
    about = np.where(linked, orders.product[safe_order] + "：" if len(orders.product) else "", "")
    columns = {
        "customer_id": cust.ids[c],
        "department_id": org.dept_ids[dept],
        "handler_agent_id": _nullable(handler, unassigned),
        "type": np.asarray(TICKET_TYPES, dtype=object)[ticket_type],
        "channel": _choice(rng, CHANNELS, n, CHANNEL_WEIGHTS),
        "priority": np.asarray(PRIORITIES, dtype=object)[priority],
        "category": np.asarray(TICKET_CATEGORIES, dtype=object)[category],
        "description": about.astype(object) + phrase,
        **{name: stamps[:, i] for i, name in enumerate(TICKET_STAMPS)},
        "status": status,
        "satisfaction": _nullable(score, ~rated),
    }
    return _Tickets(customer=c, order=order, type=ticket_type, stamps=stamps, columns=columns)


def _pauses(world: _World, rng: np.random.Generator,
            stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times tickets waited on the customer: inside the verified -> plan gap (and for some also
    plan -> resolved); a ticket still open may be waiting right now (resumed_at NULL)."""
    col = {name: i for i, name in enumerate(TICKET_STAMPS)}
    n = len(stamps)
    verified, plan, resolved = (stamps[:, col[s]] for s in ("verified_at", "plan_at",
                                                              "resolved_at"))
    chosen = (rng.random(n) < PAUSE_SHARE) & ~np.isnat(verified)
    second = chosen & (rng.random(n) < SECOND_PAUSE_SHARE)
    u1, u2 = rng.random(n), rng.random(n)
    min_gap = np.timedelta64(MIN_PAUSE_GAP_MINUTES * 60, "s")
    rows, paused, resumed = [], [], []

    def inside(start: np.ndarray, end: np.ndarray, mask: np.ndarray) -> None:
        ok = mask & ~np.isnat(end) & ((end - start) > min_gap)
        # Set to waiting by an agent (business hours); the customer answers whenever.
        budget = world.business_hours_between(start[ok], end[ok])
        p = np.minimum(world.add_business_hours(start[ok], budget * u1[ok] * 0.8),
                       end[ok] - min_gap)
        rows.append(np.flatnonzero(ok))
        paused.append(p)
        resumed.append(p + ((end[ok] - p).astype(np.int64) * u2[ok]).astype("timedelta64[s]")
                       + _SECOND)

    inside(verified, plan, chosen)
    inside(plan, resolved, second)
    waiting = chosen & np.isnat(plan)
    p = world.add_business_hours(verified[waiting],
                                 rng.uniform(*OPEN_PAUSE_HOURS, int(waiting.sum())))
    r = p + (rng.uniform(*RESUME_HOURS, len(p)) * 3600).astype("timedelta64[s]")
    still = (rng.random(len(p)) < OPEN_PAUSE_SHARE) | (r >= world.horizon)
    r[still] = np.datetime64("NaT")
    rows.append(np.flatnonzero(waiting))
    paused.append(p)
    resumed.append(r)
    row, start, end = np.concatenate(rows), np.concatenate(paused), np.concatenate(resumed)
    end = np.where(end >= world.horizon, np.datetime64("NaT"), end)
    keep = start < world.horizon
    return row[keep], start[keep], end[keep]


# ================================================================= visits
@dataclass
class _Visits:
    """Visit attempts being collected: one entry per attempt."""

    customer: list[np.ndarray] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)
    order: list[np.ndarray] = field(default_factory=list)
    ticket: list[np.ndarray] = field(default_factory=list)
    at: list[np.ndarray] = field(default_factory=list)
    outcome: list[np.ndarray] = field(default_factory=list)

    def add(self, customer: np.ndarray, kind: str, order: np.ndarray | None,
            ticket: np.ndarray | None, at: np.ndarray, outcome: np.ndarray) -> None:
        n = len(customer)
        self.customer.append(customer)
        self.kind.append(np.full(n, VISIT_KINDS.index(kind)))
        self.order.append(np.full(n, -1) if order is None else order)
        self.ticket.append(np.full(n, -1) if ticket is None else ticket)
        self.at.append(at)
        self.outcome.append(outcome)

    def arrays(self) -> dict[str, np.ndarray]:
        names = ("customer", "kind", "order", "ticket", "at", "outcome")
        return {name: np.concatenate(getattr(self, name)) if getattr(self, name)
                else np.zeros(0, dtype="datetime64[s]" if name == "at" else np.int64)
                for name in names}


@dataclass(frozen=True)
class _Attempts:
    due: np.ndarray               # index of the due visit each attempt belongs to
    at: np.ndarray
    outcome: np.ndarray           # codes into VISIT_OUTCOMES
    reached: np.ndarray           # per due: when it was reached (epoch s), -1 = not (yet)


def _attempts(world: _World, rng: np.random.Generator, start_pos: np.ndarray,
              end_pos: np.ndarray, earliest_pos: np.ndarray) -> _Attempts:
    """Calls made for due visits with windows [start_pos, end_pos] (working-day positions):
    mostly reached in the window, some late, early (reached before start_pos, not before
    earliest_pos: after the anchor's day), missed, unreachable (3+ failed) or refused.
    Attempts after the horizon have not happened yet and are left out."""
    n = len(start_pos)
    fate = _codes(rng, FATE_WEIGHTS, n)
    early_pos = np.maximum(start_pos - rng.integers(EARLY_VISIT_WORKING_DAYS[0],
                                                    EARLY_VISIT_WORKING_DAYS[1] + 1, n),
                           earliest_pos)
    early = (fate == FATES.index("early")) & (early_pos < start_pos)
    fate = np.where((fate == FATES.index("early")) & ~early, FATES.index("on_time"), fate)
    reaches = (fate == FATES.index("on_time")) | (fate == FATES.index("late")) | early
    unreachable = fate == FATES.index("unreachable")
    refused = fate == FATES.index("refused")
    n_failed = np.where(reaches, _codes(rng, FAILED_BEFORE_REACH_WEIGHTS, n),
                        np.where(unreachable, rng.integers(UNREACHABLE_ATTEMPTS[0],
                                                           UNREACHABLE_ATTEMPTS[1] + 1, n), 0))
    final = reaches | refused
    n_att = n_failed + final
    in_window = _between(rng, start_pos, end_pos)
    first = np.where(fate == FATES.index("on_time"),
                     _between(rng, start_pos, np.maximum(end_pos - n_failed, start_pos)),
                     in_window)
    first = np.where(fate == FATES.index("late"), end_pos + rng.integers(
        LATE_VISIT_WORKING_DAYS[0], LATE_VISIT_WORKING_DAYS[1] + 1, n), first)
    first = np.where(early, early_pos, first)
    n_failed = np.where(early, 0, n_failed)
    n_att = n_failed + final
    gap = np.where(unreachable, rng.integers(UNREACHABLE_GAP_WORKING_DAYS[0],
                                             UNREACHABLE_GAP_WORKING_DAYS[1] + 1, n), 1)
    due = np.repeat(np.arange(n), n_att)
    k = _cumcount(n_att)
    at = world.instants(rng, first[due] + k * gap[due], calls=True)
    is_final = final[due] & (k == n_att[due] - 1)
    m = len(due)
    failed_code = np.where(
        unreachable[due],
        np.asarray([VISIT_OUTCOMES.index(o) for o in UNREACHABLE_OUTCOME_WEIGHTS])[
            _codes(rng, list(UNREACHABLE_OUTCOME_WEIGHTS.values()), m)],
        np.asarray([VISIT_OUTCOMES.index(o) for o in FAILED_OUTCOME_WEIGHTS])[
            _codes(rng, list(FAILED_OUTCOME_WEIGHTS.values()), m)])
    final_code = np.where(refused[due], VISIT_OUTCOMES.index("refused"),
                          VISIT_OUTCOMES.index("reached"))
    outcome = np.where(is_final, final_code, failed_code)
    happened = at < world.horizon
    reached = np.full(n, -1, dtype=np.int64)
    got = happened & (outcome == VISIT_OUTCOMES.index("reached"))
    reached[due[got]] = _seconds(at[got])
    return _Attempts(due=due[happened], at=at[happened], outcome=outcome[happened],
                     reached=reached)


def _event_visits(world: _World, rng: np.random.Generator, visits: _Visits, kind: str,
                  customer: np.ndarray, anchor: np.ndarray, order: np.ndarray | None = None,
                  ticket: np.ndarray | None = None) -> None:
    """Visits due once per event (first order, delivery, closed ticket ...) of `kind`. A call
    drawn on the anchor's own day before the anchor (a window opening that day, as a major
    complaint's does) moves to the next working day: no one calls about a ticket not raised."""
    rule = world.policy.visits.kinds[kind]
    if not rule.enabled:
        return
    _, start_pos, end_pos = world.window(anchor, rule)
    att = _attempts(world, rng, start_pos, end_pos, world.after(anchor))
    at = att.at
    before = at <= anchor[att.due]
    if before.any():
        at = at.copy()
        at[before] = world.instants(rng, world.after(anchor[att.due[before]]), calls=True)
    keep = at < world.horizon
    due = att.due[keep]
    visits.add(customer[due], kind, None if order is None else order[due],
               None if ticket is None else ticket[due], at[keep], att.outcome[keep])


def _recurring_visits(world: _World, rng: np.random.Generator, visits: _Visits, kind: str,
                      customer: np.ndarray, anchor: np.ndarray, resets: np.ndarray) -> None:
    """Visits due `start` after the last reached visit (periodic: of any kind, listed in
    `resets` as customer * _SHIFT + epoch seconds, sorted; key_account: of its own kind),
    simulated forward from each customer's anchor until as_of."""
    rule = world.policy.visits.kinds[kind]
    t = _seconds(anchor)
    active = np.full(len(customer), rule.enabled, dtype=bool)
    as_of = np.datetime64(world.as_of, "D")
    while active.any():
        a = np.flatnonzero(active)
        c, ta = customer[a], t[a]
        start_day, start_pos, end_pos = world.window(ta.astype("datetime64[s]"), rule)
        j = np.searchsorted(resets, c * _SHIFT + ta, "right")
        nxt = resets[np.minimum(j, len(resets) - 1)] if len(resets) else np.zeros(len(a),
                                                                                   np.int64)
        has = (j < len(resets)) & (nxt // _SHIFT == c)
        r = nxt - c * _SHIFT
        reset = has & (r < _seconds(start_day))
        t[a[reset]] = r[reset]
        due = ~reset & (start_day <= as_of)
        active[a[~reset & ~due]] = False
        if not due.any():
            continue
        att = _attempts(world, rng, start_pos[due], end_pos[due],
                        world.after(ta[due].astype("datetime64[s]")))
        d = a[due]
        visits.add(customer[d][att.due], kind, None, None, att.at, att.outcome)
        got = att.reached >= 0
        t[d[got]] = att.reached[got]
        later = ~got & has[due]
        t[d[later]] = r[due][later]
        active[d[~got & ~has[due]]] = False


def _new_product_orders(orders: _Orders) -> np.ndarray:
    """Orders (rows) of a product the customer had not ordered before, first orders aside."""
    by = np.lexsort((orders.ordered_at, orders.customer))
    cust = orders.customer[by]
    product = np.unique(orders.product, return_inverse=True)[1].reshape(-1)[by]
    pair = cust.astype(np.int64) * len(PRODUCTS) + product
    new = np.zeros(len(by), dtype=bool)
    new[np.unique(pair, return_index=True)[1]] = True
    new[np.r_[True, cust[1:] != cust[:-1]]] = False
    return by[new]


def _special_visits(world: _World, rng: np.random.Generator, visits: _Visits, orders: _Orders,
                    tickets: _Tickets) -> None:
    """new_product (repeat customers ordering a product new to them), major_complaint
    (complaints of the rule's priorities, from created_at) and product_upgrade (per event of
    the policy, customers with an order of its product delivered before its date)."""
    kinds = world.policy.visits.kinds
    if len(orders.customer):
        new = _new_product_orders(orders)
        _event_visits(world, rng, visits, "new_product", orders.customer[new],
                      orders.ordered_at[new], order=new)
    rule = kinds["major_complaint"]
    types = TICKET_TYPES if rule.ticket_types is None else rule.ticket_types  # None: any
    priorities = PRIORITIES if rule.priorities is None else rule.priorities
    major = np.isin(tickets.type, [TICKET_TYPES.index(t) for t in types]) \
        & np.isin(tickets.columns["priority"], list(priorities))
    rows = np.flatnonzero(major)
    _event_visits(world, rng, visits, "major_complaint", tickets.customer[rows],
                  tickets.stamps[rows, 0], ticket=rows)
    for event in world.policy.visits.events:
        day = np.datetime64(event.date, "D").astype("datetime64[s]")
        of = np.flatnonzero((orders.product == event.product) & (orders.delivered_at < day))
        who = np.unique(orders.customer[of])
        _event_visits(world, rng, visits, "product_upgrade", who, np.full(len(who), day))


def _visits(world: _World, rng: np.random.Generator, cust: _Customers, orders: _Orders,
            tickets: _Tickets) -> _Visits:
    """All visit attempts of a chunk, following the visit rules of the policy."""
    visits = _Visits()
    kinds = world.policy.visits.kinds
    if len(orders.customer):
        by_time = np.lexsort((orders.ordered_at, orders.customer))
        first = by_time[np.r_[True, orders.customer[by_time][1:] != orders.customer[by_time][:-1]]]
        _event_visits(world, rng, visits, "welcome", orders.customer[first],
                      orders.ordered_at[first], order=first)
        delivered = np.flatnonzero(~np.isnat(orders.delivered_at))
        for kind in ("early_use", "stable_use", "long_term"):
            _event_visits(world, rng, visits, kind, orders.customer[delivered],
                          orders.delivered_at[delivered], order=delivered)
    closed_at = tickets.stamps[:, TICKET_STAMPS.index("closed_at")]
    types = [TICKET_TYPES.index(t) for t in kinds["post_resolution"].ticket_types or ()]
    resolved = np.flatnonzero(~np.isnat(closed_at) & np.isin(tickets.type, types))
    _event_visits(world, rng, visits, "post_resolution", tickets.customer[resolved],
                  closed_at[resolved], ticket=resolved)
    # Special circumstances from a stream of their own, so the other kinds' draws stay put.
    _special_visits(world, np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0]),
                    visits, orders, tickets)

    # Recurring visits start from cooperation (new customers) or from an assumed last visit
    # before the history (older customers), so the history is not flooded with missed ones.
    coop = world.days[cust.coop_pos].astype("datetime64[s]")
    history = world.history_start.astype("datetime64[s]")
    for kind, members in (("key_account", cust.key), ("periodic", ~cust.key)):
        idx = np.flatnonzero(members)
        back = (rng.random(len(idx)) * kinds[kind].start.amount * 86_400).astype(
            "timedelta64[s]")
        anchor = np.where(cust.new[idx], coop[idx], history - back)
        resets = np.zeros(0, dtype=np.int64)
        if kind == "periodic":
            done = visits.arrays()
            ok = (done["outcome"] == VISIT_OUTCOMES.index("reached")) & ~cust.key[done["customer"]]
            resets = np.sort(done["customer"][ok] * _SHIFT + _seconds(done["at"][ok]))
        _recurring_visits(world, rng, visits, kind, idx, anchor, resets)
    return visits


# ================================================================= a chunk
@dataclass
class _Counters:
    """Next number of each id prefix, carried across chunks so ids stay unique."""

    next: dict[str, int] = field(default_factory=lambda: {"O": 1, "T": 1, "V": 1})


def _lookup(ids: np.ndarray, index: np.ndarray) -> np.ndarray:
    """ids[index] with None (NULL) where index is -1 (no such row)."""
    if not len(ids):
        return np.full(len(index), None, dtype=object)
    return _nullable(ids[np.maximum(index, 0)], index < 0)


def _numbered(prefix: str, stamps: np.ndarray, counters: _Counters) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """(time order, ids by row): ids follow time within a chunk, continuing across chunks."""
    order = np.argsort(stamps, kind="stable")
    ids = np.empty(len(order), dtype=object)
    ids[order] = make_ids(prefix, counters.next[prefix], len(order))
    counters.next[prefix] += len(order)
    return order, ids


def _chunk(world: _World, org: _Org, rng: np.random.Generator, first: int, count: int,
           counters: _Counters) -> dict[str, Columns]:
    cust = _customers(world, org, rng, first, count)
    orders = _orders(world, rng, cust)
    tickets = _tickets(world, org, rng, cust, orders)

    order_sort, order_ids = _numbered("O", orders.ordered_at, counters)
    orders_cols = {
        "order_id": order_ids, "customer_id": cust.ids[orders.customer],
        "product": orders.product, "product_version": orders.version, "amount": orders.amount,
        "ordered_at": orders.ordered_at, "delivered_at": orders.delivered_at,
    }
    ticket_sort, ticket_ids = _numbered("T", tickets.stamps[:, 0], counters)
    tickets_cols = {**tickets.columns, "ticket_id": ticket_ids,
                    "order_id": _lookup(order_ids, tickets.order)}

    row, paused, resumed = _pauses(world, rng, tickets.stamps)
    ticket_rank = np.empty(len(ticket_sort), dtype=np.int64)
    ticket_rank[ticket_sort] = np.arange(len(ticket_sort))
    by_key = np.lexsort((paused, ticket_rank[row]))
    row, paused, resumed = row[by_key], paused[by_key], resumed[by_key]
    unique = np.ones(len(row), dtype=bool)  # one pause per (ticket, paused_at): the key
    unique[1:] = (row[1:] != row[:-1]) | (paused[1:] != paused[:-1])
    pauses_cols = {"ticket_id": ticket_ids[row[unique]], "paused_at": paused[unique],
                   "resumed_at": resumed[unique]}

    v = _visits(world, rng, cust, orders, tickets).arrays()
    n = len(v["customer"])
    visit_sort = np.argsort(v["at"], kind="stable")
    v = {name: values[visit_sort] for name, values in v.items()}
    reached = v["outcome"] == VISIT_OUTCOMES.index("reached")
    key = cust.key[v["customer"]]
    method = np.where(key, _codes(rng, KEY_METHOD_WEIGHTS, n), _codes(rng, METHOD_WEIGHTS, n))
    method = np.where(reached, method, VISIT_METHODS.index("phone"))
    agent = cust.visit_agent[v["customer"]]
    cover = ~key & (rng.random(n) < COVERING_AGENT_SHARE)
    agent[cover] = org.active_agents.pick(rng, cust.dept[v["customer"][cover]]).astype(np.int64)
    rated = reached & (rng.random(n) >= SATISFACTION_MISSING_SHARE)
    score = _codes(rng, VISIT_SATISFACTION_WEIGHTS, n) + 1
    note_keys = (*VISIT_KINDS, *VISIT_OUTCOMES)
    notes = _Pool.of([VISIT_NOTES.get(k, ("",)) for k in note_keys]).pick(
        rng, np.where(reached, v["kind"], len(VISIT_KINDS) + v["outcome"]))
    visits_cols = {
        "visit_id": make_ids("V", counters.next["V"], n),
        "customer_id": cust.ids[v["customer"]],
        "agent_id": org.agent_ids[agent],
        "kind": np.asarray(VISIT_KINDS, dtype=object)[v["kind"]],
        "ticket_id": _lookup(ticket_ids, v["ticket"]),
        "order_id": _lookup(order_ids, v["order"]),
        "visited_at": v["at"],
        "method": np.asarray(VISIT_METHODS, dtype=object)[method],
        "outcome": np.asarray(VISIT_OUTCOMES, dtype=object)[v["outcome"]],
        "satisfaction": _nullable(score, ~rated),
        "notes": notes,
    }
    counters.next["V"] += n
    return {
        "customers": cust.columns,
        "orders": {k: a[order_sort] for k, a in orders_cols.items()},
        "tickets": {k: a[ticket_sort] for k, a in tickets_cols.items()},
        "ticket_pauses": pauses_cols,
        "visits": visits_cols,
    }


def _generate_columns(customers: int, seed: int, as_of: dt.date, chunk_customers: int,
                      policy: Policy | None) -> Iterator[dict[str, Columns]]:
    """The chunks as plain numpy columns (what both the frames and the loader are made of)."""
    if not 1 <= customers < 10 ** ID_WIDTHS["C"]:
        raise ValueError(f"customers must be 1..{10 ** ID_WIDTHS['C'] - 1}, got {customers}")
    if chunk_customers < 1:
        raise ValueError("chunk_customers must be >= 1")
    world = _world(as_of, policy)
    org = _organisation(np.random.default_rng([seed, 0]), customers)
    counters = _Counters()
    for k, first in enumerate(range(0, customers, chunk_customers)):
        rng = np.random.default_rng([seed, 1, k])
        tables = _chunk(world, org, rng, first, min(chunk_customers, customers - first),
                        counters)
        if k == 0:
            tables = {"departments": org.departments, "agents": org.agents, **tables}
        yield {name: tables[name] for name in TABLE_ORDER if name in tables}


def _frame(name: str, columns: Columns) -> pd.DataFrame:
    """Columns -> DataFrame in schema order: text as str, nullable ints as Int64,
    0/1 flags as int8, timestamps and dates as naive datetime64[s]."""
    data: dict[str, Any] = {}
    for col, kind in TABLES[name].columns.items():
        values = columns[col]
        if kind in ("id", "text"):
            data[col] = pd.array(values, dtype="str")
        elif kind == "int":
            data[col] = pd.array(values, dtype="Int64")
        elif kind == "bool":
            data[col] = values.astype(np.int8)
        elif kind == "money":
            data[col] = values.astype(float)
        else:
            data[col] = values.astype("datetime64[s]")
    return pd.DataFrame(data)


# ================================================================= public API: generation
def generate(customers: int = DEFAULT_CUSTOMERS, seed: int = DEFAULT_SEED,
             as_of: dt.date = DEFAULT_AS_OF, *, chunk_customers: int = CHUNK_CUSTOMERS,
             policy: Policy | None = None) -> Iterator[dict[str, pd.DataFrame]]:
    """The demo CRM in chunks of customers: {table: frame}, columns as revisit.config.schema.TABLES.

    The first chunk also holds departments and agents. Timestamps are naive local
    datetime64[s]; ids are unique across chunks. `policy` (default: the project's
    include/config/policy.yaml, not REVISIT_POLICY, so the data is reproducible) supplies the
    calendar, SLA targets and visit windows the data is shaped by."""
    for chunk in _generate_columns(customers, seed, as_of, chunk_customers, policy):
        yield {name: _frame(name, columns) for name, columns in chunk.items()}


def generate_frames(customers: int = DEFAULT_CUSTOMERS, seed: int = DEFAULT_SEED,
                    as_of: dt.date = DEFAULT_AS_OF, **options: Any) -> dict[str, pd.DataFrame]:
    """The whole demo CRM in memory (small sizes: tests, notebooks)."""
    parts: dict[str, list[pd.DataFrame]] = {name: [] for name in TABLE_ORDER}
    for chunk in generate(customers, seed, as_of, **options):
        for name, frame in chunk.items():
            parts[name].append(frame)
    return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}


# ================================================================= public API: loading
class DemoCrmError(RuntimeError):
    """The demo CRM cannot be built where asked (tables exist and replace is off, ...)."""


# SQLite bulk-load settings: a rebuildable demo file needs no fsync or rollback journal, and a
# 128 MB page cache speeds up the index builds (memory stays bounded: sorts spill to disk).
_SQLITE_LOAD_PRAGMAS = ("PRAGMA synchronous = OFF", "PRAGMA journal_mode = OFF",
                        "PRAGMA cache_size = -131072")
INSERT_BATCH_ROWS = 50_000         # rows converted to tuples at a time (bounded memory)


def _db_values(values: np.ndarray, kind: str) -> list[Any]:
    """A column as DB-API values: Python str/int/float or None; timestamps as ISO text
    'YYYY-MM-DD HH:MM:SS' (what SQLite stores, and exact to the second everywhere)."""
    if kind in ("datetime", "date"):
        stamps = values.astype("datetime64[s]")
        text = np.datetime_as_string(stamps, unit="s" if kind == "datetime" else "D")
        if kind == "datetime" and len(text):  # 'T' -> ' ' in place: the 11th character
            text.view(np.uint32).reshape(len(text), -1)[:, 10] = ord(" ")
        out = text.astype(object)
        out[np.isnat(stamps)] = None
        return out.tolist()
    if kind == "money":
        out = values.astype(float).round(2).astype(object)
        out[np.isnan(values.astype(float))] = None
        return out.tolist()
    return values.tolist()  # object arrays hold Python str/int/None; int arrays give ints


def _rows(name: str, columns: Columns, start: int, stop: int) -> list[tuple[Any, ...]]:
    spec = TABLES[name].columns
    values = [_db_values(columns[col][start:stop], kind) for col, kind in spec.items()]
    return list(zip(*values, strict=True))


@dataclass(frozen=True)
class _Batch:
    """Rows ready for one executemany, or the end of a chunk (commit point)."""

    table: str = ""
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    end_of_chunk: bool = False


def _batches(customers: int, seed: int, as_of: dt.date, chunk_customers: int,
             policy: Policy | None) -> Iterator[_Batch]:
    """The demo CRM as insert batches of at most INSERT_BATCH_ROWS rows (bounded memory)."""
    for chunk in _generate_columns(customers, seed, as_of, chunk_customers, policy):
        for name, columns in chunk.items():
            total = len(columns[next(iter(TABLES[name].columns))])
            for start in range(0, total, INSERT_BATCH_ROWS):
                yield _Batch(name, _rows(name, columns, start, start + INSERT_BATCH_ROWS))
        yield _Batch(end_of_chunk=True)


def _write(conn: Connection, batch: _Batch) -> None:
    """Bulk insert: SQLite takes positional executemany (fastest there); PostgreSQL and
    MySQL/MariaDB take Core executemany, which SQLAlchemy turns into multi-row INSERTs
    (insertmanyvalues on psycopg2, pymysql's own batching)."""
    names = list(TABLES[batch.table].columns)
    target = table(batch.table, *(column(c) for c in names))
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(str(insert(target).compile(dialect=conn.dialect)), batch.rows)
    else:
        conn.execute(insert(target), [dict(zip(names, row, strict=True)) for row in batch.rows])


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: building millions of row tuples otherwise triggers
    it over and over (4x slower), and the load creates no reference cycles worth collecting."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_demo_crm(url: str | URL, customers: int = DEFAULT_CUSTOMERS,
                   seed: int = DEFAULT_SEED, as_of: dt.date = DEFAULT_AS_OF,
                   replace: bool = True, *, chunk_customers: int = CHUNK_CUSTOMERS,
                   policy: Policy | None = None) -> dict[str, int]:
    """Create the demo CRM at `url` (schema from include/sql/crm/schema.sql) and fill it with
    `generate(...)`'s data; returns rows per table. With replace, existing demo tables are
    dropped first; without, existing demo tables are an error (never mixed with old rows)."""
    engine = make_engine(url)
    try:
        statements = ddl_statements(CRM_SCHEMA, engine.dialect.name)
        tables = [s for s in statements if not s.upper().startswith("CREATE INDEX")]
        indexes = [s for s in statements if s.upper().startswith("CREATE INDEX")]
        with engine.begin() as conn:
            existing = [t for t in TABLE_ORDER if inspect(conn).has_table(t)]
            if existing and not replace:
                raise DemoCrmError(f"tables {', '.join(existing)} already exist at "
                                   f"{engine.url.render_as_string(hide_password=True)}; "
                                   "pass replace=True to drop them")
            for name in existing:
                Table(name, MetaData()).drop(conn)
            for statement in tables:
                conn.exec_driver_sql(statement)
        counts = dict.fromkeys(TABLE_ORDER, 0)
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                for pragma in _SQLITE_LOAD_PRAGMAS:
                    conn.exec_driver_sql(pragma)
            batches = _batches(customers, seed, as_of, chunk_customers, policy)
            with _gc_paused():
                for batch in batches:
                    if batch.end_of_chunk:
                        conn.commit()
                        continue
                    _write(conn, batch)
                    counts[batch.table] += len(batch.rows)
            for statement in indexes:
                conn.exec_driver_sql(statement)
            conn.commit()
    finally:
        engine.dispose()
    return counts


# ================================================================= data-entry errors
# What real CRMs hold and the quality gate must catch: one kind per table, each a typo a person
# makes. Applied after loading, to a seeded sample, so the clean generator stays the default.
ENTRY_ERRORS = {
    # table: (key, column, wrong value, rows eligible)
    "customers": ("customer_id", "phone", "13800", None),                 # digits dropped
    "visits": ("visit_id", "satisfaction", 11, "satisfaction"),            # 1-10 scale
    "orders": ("order_id", "delivered_at", dt.datetime(2015, 1, 1, 9), "delivered_at"),  # year
}


def add_entry_errors(url: str | URL, share: float, seed: int = DEFAULT_SEED) -> dict[str, list]:
    """Corrupt `share` of the rows of each ENTRY_ERRORS table (at least one when share > 0);
    returns the keys touched per table, so a demo or test can point at what the gate caught."""
    if not 0 <= share < 1:
        raise ValueError(f"entry error share must be in [0, 1), got {share}")
    rng = np.random.default_rng([seed, 20261123])
    touched: dict[str, list] = {}
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for name, (key, col, wrong, eligible) in ENTRY_ERRORS.items():
                where = table(name, column(key), column(col))
                query = select(where.c[key]).order_by(where.c[key])
                if eligible:
                    query = query.where(column(eligible).is_not(None))
                keys = conn.execute(query).scalars().all()
                if not keys or share == 0:
                    continue
                count = max(1, round(len(keys) * share))
                chosen = sorted(keys[i] for i in rng.choice(len(keys), count, replace=False))
                conn.execute(update(where).where(where.c[key] == bindparam("k"))
                             .values({col: wrong}), [{"k": k} for k in chosen])
                touched[name] = chosen
    finally:
        engine.dispose()
    return touched


# ================================================================= CLI
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.demo_crm",
                                     description="Build the Revisit demo CRM database.")
    parser.add_argument("--url", default=DEFAULT_URL,
                        help=f"SQLAlchemy URL of the CRM database (default {DEFAULT_URL})")
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=DEFAULT_AS_OF,
                        help="the CRM as it stands at the end of this day (YYYY-MM-DD)")
    parser.add_argument("--no-replace", action="store_true",
                        help="fail instead of dropping existing demo tables")
    parser.add_argument("--entry-errors", type=float, default=0.0, metavar="SHARE",
                        help="share of customers, orders and visits given a data-entry error "
                             "for the quality gate to catch (default 0: a clean CRM)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        counts = build_demo_crm(args.url, args.customers, args.seed, args.as_of,
                                replace=not args.no_replace)
        touched = add_entry_errors(args.url, args.entry_errors, args.seed)
    except (DemoCrmError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, rows in counts.items():
        print(f"{name:15} {rows:>12,}")
    for name, keys in touched.items():
        print(f"entry errors in {name}: {len(keys)} rows")
    print(f"built in {time.perf_counter() - began:.1f} s: "
          f"{make_url(args.url).render_as_string(hide_password=True)}")
    return 0


__all__ = [
    "DEFAULT_AS_OF", "ENTRY_ERRORS", "DemoCrmError", "add_entry_errors", "build_demo_crm",
    "generate", "generate_frames", "main", "make_ids",
]

if __name__ == "__main__":
    raise SystemExit(main())
