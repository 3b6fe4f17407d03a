//! The keyword tables of the complexity analyzer.
//!
//! Latin keywords are whole words or phrases of up to four words, lower-case ASCII, one space
//! between words: the analyzer splits text on non-alphanumerics, so `research` never matches
//! `search` and `barcode` never matches `code`. A phrase with a negative weight cancels the
//! word it contains (`zip code` is no code cue). CJK has no spaces, so CJK keywords are matched
//! as substrings, longest first, and a match consumes its characters: 研究生 (graduate
//! student) hides 研究 (research), 方程式 (equation) hides 程式 (program).
//!
//! The tables are grouped by cue for reading; [`super::index::Lexicon`] indexes them for
//! lookup. To add a keyword, add it to the group of its cue: the tests check its form.

use super::Mode;

/// What a keyword is evidence of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Cue {
    /// Evidence for a mode; a negative weight cancels a shorter keyword.
    Mode(Mode, f32),
    /// Multi-step work (compare, analyse, prove, plan): raises the complexity score.
    Step(f32),
    /// An explicit constraint on the answer.
    Constraint,
    /// A connector that introduces another sub-task.
    SubTask,
    /// "how many": with numbers in the prompt, a math word problem.
    MathQuestion,
    /// A CJK phrase that hides a keyword it contains, and means nothing itself.
    Neutral,
}

const fn chat(w: f32) -> Cue {
    Cue::Mode(Mode::Chat, w)
}
const fn knowledge(w: f32) -> Cue {
    Cue::Mode(Mode::Knowledge, w)
}
const fn search(w: f32) -> Cue {
    Cue::Mode(Mode::Search, w)
}
const fn code(w: f32) -> Cue {
    Cue::Mode(Mode::Code, w)
}
const fn thinking(w: f32) -> Cue {
    Cue::Mode(Mode::Thinking, w)
}
const fn research(w: f32) -> Cue {
    Cue::Mode(Mode::Research, w)
}
const STEP: Cue = Cue::Step(1.0);
const HALF_STEP: Cue = Cue::Step(0.5);

/// Latin keywords, `|`-separated, grouped by cue.
#[rustfmt::skip]
pub(super) const LATIN: &[(Cue, &str)] = &[
    (code(1.0), "code|coding|codebase|debug|debugging|debugger|compile|compiler|compiling"),
    (code(1.0), "refactor|refactoring|programming|javascript|typescript|python|golang|kotlin"),
    (code(1.0), "haskell|cpp|csharp|html|css|sql|regex|regexp|api|apis|sdk|segfault|stacktrace"),
    (code(1.0), "traceback|stack trace|null pointer|segmentation fault|syntax error|unit test"),
    (code(1.0), "unit tests|leetcode|github|gitlab|git|npm|dockerfile|makefile|powershell|bash"),
    (code(1.0), "shell script|react|django|flask|fastapi|nodejs|node js|numpy|pytorch|frontend"),
    (code(1.0), "backend|endpoint|endpoints|source code|snippet|write a function|write a program"),
    (code(1.0), "write a script|write code|pull request|merge conflict|memory leak|linked list"),
    (code(0.6), "function|functions|method|script|program|bug|bugs|algorithm|implement|java|rust"),
    (code(0.6), "ruby|swift|php|lua|dart|scala|perl|docker|kubernetes|database|query"),
    (code(0.6), "library|framework|compile error|runtime|exception|crash|crashes|localhost|cli"),
    (code(0.4), "error|server|linux|terminal|deploy|module|modules|tests|cors|json"),
    // Words that contain or sit next to a code cue without being about code.
    (code(-1.0), "zip code|postal code|dress code|area code|morse code|promo code|discount code"),
    (code(-1.0), "coupon code|qr code|code of conduct|country code|genetic code|tax code"),
    (code(-1.0), "building code|bar code|compile a report|compile a list"),
    (code(-0.6), "rust stains|rust stain|rust off|remove rust|rust spots|training program"),
    (code(-0.6), "tv program|loyalty program|exchange program|degree program|program manager"),
    (code(-1.0), "ball python|pet python|python snake"),
    (search(1.0), "latest|news|headline|headlines|right now|price|prices|stock price|weather"),
    (search(1.0), "exchange rate|forecast|look up|lookup|search|google|search the web|breaking"),
    (search(1.0), "search online|who won|release notes|as of today|at the moment|opening hours"),
    (search(0.6), "recent|recently|newest|trending|schedule|score|scores|traffic|released|ceo"),
    (search(0.6), "stream|live|tomorrow|last night|update|updates|find online|headquarters"),
    (search(0.6), "rain|snow|temperature|sunny|storm|stock market|stocks|interest rates|rates"),
    (search(0.6), "mortgage rates|exchange rates|flight status|delays|showtimes|in theaters"),
    // Time words alone are weak: "I'm feeling down today" is no search.
    (search(0.6), "today|tonight|yesterday|current|currently|this week|this weekend|this month"),
    (search(-1.0), "search engine|search engines|binary search|search algorithm|search tree"),
    (search(-1.0), "linear search|depth first search|breadth first search|electric current"),
    (search(-1.0), "alternating current|direct current|current density|good news"),
    (research(1.5), "research|researching|literature review|literature survey|meta analysis"),
    (research(1.5), "systematic review|in depth report|white paper|whitepaper|deep dive"),
    (research(1.5), "state of the art|academic literature|peer reviewed|with citations|cited"),
    (research(1.5), "citing|citation|citations|cite sources|with references|well sourced"),
    (research(1.5), "bibliography|market analysis|industry analysis|comparative report"),
    (research(1.0), "researchers|researcher|researched|report|reports|survey|surveys|sources"),
    (research(1.0), "references|papers|studies|investigate|in depth|consensus|landscape"),
    (research(0.6), "study|comprehensive|overview|trends|evidence|findings|history|economics"),
    (research(0.6), "policies|regulate|regulation|adoption|industry"),
    (knowledge(1.5), "my documents|my docs|my notes|my files|our docs|our documents|our wiki"),
    (knowledge(1.5), "our documentation|internal wiki|knowledge base|employee handbook"),
    (knowledge(1.5), "based on the document|according to the document|the attached|uploaded"),
    (knowledge(1.0), "the document|this document|the documents|attached|the pdf|this pdf"),
    (knowledge(1.0), "handbook|manual|the manual|user manual|meeting notes|transcript|intranet"),
    (knowledge(1.0), "confluence|sharepoint|our policy|company policy|the contract|faq"),
    (knowledge(0.6), "according to|documentation|contract|agreement|policy|section|notes"),
    (knowledge(0.6), "in our|our internal|the spreadsheet|lease"),
    (knowledge(1.0), "docs|design docs|our design docs|runbook|playbook|wiki"),
    (knowledge(0.8), "documents|policy documents"),
    (thinking(1.0), "prove|proof|proofs|theorem|lemma|riddle|puzzle|puzzles|paradox|logic"),
    (thinking(1.0), "logical|logically|syllogism|deduce|deduction|brain teaser|rigorous"),
    (thinking(1.0), "rigorously|irrational|equation|equations|solve for|derivative|integral"),
    (thinking(1.0), "probability|math|mathematics|reason carefully|think carefully"),
    (thinking(0.6), "reason|reasoning|calculate|compute|solve|algebra|geometry|calculus|prime"),
    (thinking(0.6), "arithmetic|combinatorics|percent|percentage|fraction|odds|evaluate it"),
    (thinking(0.6), "derive|derivation|expected value|expected number"),
    (thinking(1.0), "explain your reasoning|show your reasoning|show your work"),
    (chat(1.0), "hi|hello|hey|thanks|thank you|joke|jokes|poem|poems|haiku|limerick|toast"),
    (chat(1.0), "translate|translation|rewrite|rephrase|paraphrase|proofread|how are you"),
    (chat(1.0), "good morning|good night|short story|lyrics|slogan|tagline|caption"),
    (chat(0.6), "story|song|email|letter|greeting|birthday|recommend|recommendation|advice"),
    (chat(0.6), "tips|name for|feel|feeling|friendly|polite|movie|movies|recipe|gift"),
    (STEP, "step by step|compare|compares|comparing|comparison|contrast|versus|analyze"),
    (STEP, "analyse|analyzing|analysing|analysis|evaluate|evaluation|assess|assessment|plan"),
    (STEP, "planning|design|architect|architecture|optimize|optimise|optimization|trade offs"),
    (STEP, "tradeoffs|tradeoff|trade off|pros and cons|derive|derivation|prove|proof"),
    (STEP, "critique|synthesize|synthesise|investigate|investigation|roadmap|migrate"),
    (STEP, "migration|rigorous|breakdown|break down|reason through|think through|end to end"),
    (STEP, "multi step|multiple steps|consolidated|timeline|comparative"),
    (HALF_STEP, "detailed|in detail|outline|implement|explain why|justify|comprehensive"),
    (HALF_STEP, "thorough|thoroughly|strategy|strategies|refactor|build|set up|explain"),
    (Cue::Constraint, "must|at least|at most|no more than|no less than|exactly|without"),
    (Cue::Constraint, "within|ensure|make sure|requirements|required|constraint|constraints"),
    (Cue::Constraint, "limit|maximum|minimum|do not|avoid|strictly|edge cases|covering"),
    (Cue::SubTask, "then|also|additionally|furthermore|moreover|finally|afterwards|lastly"),
    (Cue::SubTask, "as well as|after that|in addition|followed by|including"),
    (Cue::MathQuestion, "how many|how much|how long|how far|how old|how fast|what percent"),
    (Cue::MathQuestion, "what percentage|when does|what time will|in total|altogether|in all"),
    (Cue::MathQuestion, "total|average|per hour|per day|per week|per month|per year|remaining"),
    (Cue::MathQuestion, "what is the sum|how tall|what fraction|left over"),
];

/// CJK keywords (Simplified and Traditional), `|`-separated, grouped by cue.
#[rustfmt::skip]
pub(super) const CJK: &[(Cue, &str)] = &[
    (code(1.0), "代码|代碼|程式碼|程式|编程|編程|调试|調試|除錯|编译|編譯|重构|重構|单元测试"),
    (code(1.0), "單元測試|正则表达式|正則表達式|写一个函数|寫一個函數|写个函数|源码|源碼"),
    (code(0.8), "程序|函数|函數|报错|報錯|脚本|腳本|内存泄漏|記憶體洩漏|并发|並發"),
    (code(0.6), "算法|演算法|数据库|資料庫|接口|查询语句|编写|編寫|部署"),
    (code(1.0), "命令行|命令列|终端|終端|爬虫|爬蟲"),
    (code(0.6), "字符串|字串|变量|變數|数组|陣列"),
    (Cue::Neutral, "条码|條碼|条形码|條形碼|二维码|二維碼|密码|密碼|密码学|密碼學|程序员"),
    (Cue::Neutral, "程式設計師|法律程序|诉讼程序|訴訟程序|研究生|研究所|研究员|研究員"),
    (Cue::Neutral, "搜索引擎|搜尋引擎|合并|合併"),
    (search(1.0), "最新|新闻|新聞|天气|天氣|汇率|匯率|搜索|搜尋|查一下|查查|股价|股價"),
    (search(1.0), "时刻表|時刻表|比分|空气质量|空氣品質|上网查|上網查"),
    (search(0.8), "价格|價格|售价|售價|查询|查詢|实时|即時"),
    (search(0.6), "今天|今日|今晚|昨晚|现在|現在|目前|最近|动态|動態|明天"),
    (search(0.6), "下雨|气温|氣溫|股市|台股|美股|港股|收盘|收盤|利率|航班"),
    (research(1.5), "研究|调研|調研|综述|綜述|文献|文獻|白皮书|白皮書|文献回顾|文獻回顧"),
    (research(1.0), "报告|報告|参考文献|參考文獻|引用|调查|調查|深度研究|行业分析|產業分析"),
    (research(0.6), "现状|現狀|发展历程|發展歷程|市场规模|市場規模|深入|深度|全面|来源|來源"),
    (research(0.6), "政策|趋势|趨勢|挑战|挑戰|商业模式|商業模式"),
    (knowledge(1.5), "知识库|知識庫|文档|文檔|上传|上傳|员工手册|員工手冊|会议纪要|會議紀錄"),
    (knowledge(1.0), "附件|手册|手冊|这份|這份|会议记录|會議記錄|内部|內部"),
    (knowledge(0.6), "文件|根据|根據|资料|資料|合同|合約|我们的|我們的|公司的"),
    (thinking(1.0), "证明|證明|推理|逻辑|邏輯|谜题|謎題|谜语|謎語|悖论|悖論|数学|數學|方程"),
    (thinking(1.0), "方程式|解方程|概率|机率|機率|几率|幾率|推导|推導|鸡兔同笼|雞兔同籠|数学题"),
    (thinking(1.0), "數學題"),
    (thinking(0.6), "计算|計算|求解|怎么解|怎麼解|相遇|平均速度"),
    (chat(1.0), "你好|您好|谢谢|謝謝|笑话|笑話|翻译|翻譯|祝福|早安|晚安|讲个|講個"),
    (chat(0.8), "诗|詩|故事|推荐|推薦|名字|聊聊|心情|怎么样|怎麼樣|电影|電影"),
    (chat(0.4), "建议|建議|准备|準備|沟通|溝通"),
    (STEP, "分析|比较|比較|对比|對比|证明|證明|步骤|步驟|一步一步|逐步|规划|規劃|计划|計劃"),
    (STEP, "设计|設計|评估|評估|优化|優化|权衡|權衡|优缺点|優缺點|推导|推導|整理|列出"),
    (HALF_STEP, "详细|詳細|策略|架构|架構|全面|深入|实现|實現|解释|解釋|撰写|撰寫"),
    (Cue::Constraint, "必须|必須|至少|最多|不超过|不超過|不要|不得|只能|确保|確保|要求|限制"),
    (Cue::Constraint, "格式|字以内|字以內|务必|務必"),
    (Cue::SubTask, "然后|然後|并且|並且|另外|此外|同时|同時|首先|其次|最后|最後|接着|接著"),
    (Cue::SubTask, "以及|并|並|又"),
    (Cue::MathQuestion, "多少|几个|幾個|几|幾|还剩|還剩|多久|多长|多長|各有|总共|總共|一共|平均"),
];
