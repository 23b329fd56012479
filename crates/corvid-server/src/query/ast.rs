//! The parsed query: what the parser produces and everything else reads. Parameters are
//! already bound (a `$p` is its value here), so evaluation never sees query text.

/// A collection query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    /// `None` for `@all_docs`.
    pub collection: Option<String>,
    pub filter: Option<Expr>,
    pub order_by: Vec<OrderKey>,
    pub select: Option<Select>,
    pub includes: Vec<Path>,
    pub skip: Option<usize>,
    pub take: Option<usize>,
    pub(crate) update: Option<String>,
}

/// Where a value lives in a document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Path {
    /// `id()`: the document id.
    Id,
    /// A field path as written (alias removed), e.g. `Address.City` or `Lines[].Product`.
    Field(Vec<Step>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Step {
    Field(String),
    /// `[]`: every element of an array.
    EachItem,
}

/// A literal or bound parameter value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// A `where` condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    True,
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `exact(…)`: string comparisons inside are case-sensitive.
    Exact(Box<Expr>),
    Compare {
        path: Path,
        op: CompareOp,
        value: Scalar,
    },
    Between {
        path: Path,
        low: Scalar,
        high: Scalar,
    },
    /// `in (…)`, or with `all` set, `all in (…)`: the field holds every value.
    In {
        path: Path,
        values: Vec<Scalar>,
        all: bool,
    },
    StartsWith {
        path: Path,
        prefix: String,
    },
    EndsWith {
        path: Path,
        suffix: String,
    },
    Exists(Path),
    /// `search(f, 'terms')`: lowercased terms; a leading or trailing `*` is a wildcard.
    Search {
        path: Path,
        terms: Vec<String>,
    },
}

/// How `order by … as <type>` compares values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderType {
    /// RavenDB's default: the value's text, case-insensitively.
    String,
    Long,
    Double,
    AlphaNumeric,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderKey {
    pub path: Path,
    pub descending: bool,
    pub order_type: OrderType,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Select {
    pub distinct: bool,
    pub fields: Vec<Projection>,
}

/// One projected field and the name it gets in the result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Projection {
    pub path: Path,
    pub name: String,
}

impl Path {
    /// The name RavenDB gives the path in index names and projections (`Address.City`,
    /// `Lines[].Product`, `id()`).
    pub fn display_name(&self) -> String {
        match self {
            Path::Id => "id()".to_owned(),
            Path::Field(steps) => {
                let mut name = String::new();
                for step in steps {
                    match step {
                        Step::Field(field) => {
                            if !name.is_empty() {
                                name.push('.');
                            }
                            name.push_str(field);
                        }
                        Step::EachItem => name.push_str("[]"),
                    }
                }
                name
            }
        }
    }
}

impl Query {
    /// The JavaScript inside `update { … }`, for patch by query.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn update_script(&self) -> Option<&str> {
        self.update.as_deref()
    }
}
