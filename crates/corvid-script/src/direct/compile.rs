//! From the oxc parse of a script to the interpreter's tree, or `None` when the script uses
//! anything outside the subset the interpreter runs exactly as QuickJS does.

use std::sync::Arc;

use oxc_ast::ast::{
    Argument, ArrayExpressionElement, AssignmentOperator, BinaryOperator, BindingPattern,
    CallExpression, ChainElement, Expression, ForStatementInit, ForStatementLeft, LogicalOperator,
    ObjectPropertyKind, Program, PropertyKey, PropertyKind, SimpleAssignmentTarget, Statement,
    UnaryOperator, UpdateOperator, VariableDeclaration, VariableDeclarationKind,
};

use super::value::is_index_like;

/// How `loadTo…` calls take their arguments, which depends on the ETL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadForm {
    /// `loadTo<Name>(obj)`, `loadTo('Name', obj)` (arguments after the object are left to
    /// QuickJS).
    Etl,
    /// OLAP ETL: `loadTo<Name>(key, obj)`, `loadTo('Name', key, obj)`, the key made by
    /// `partitionBy(…)` or `noPartition()` in the call itself; `$customPartitionValue` exists.
    Olap,
}

/// The interpreter's form of a script body.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    /// The form the script's `loadTo…` calls were compiled in.
    pub load_form: LoadForm,
    pub body: Vec<Stmt>,
    /// Number of variable slots; `var` slots start `undefined`, the others uninitialised.
    pub slots: usize,
    pub var_slots: Vec<usize>,
    /// Every property name the script uses, once each: the interpreter's objects store these
    /// very `Arc`s as keys, so a lookup by a name from the script compares pointers.
    pub names: Vec<Arc<str>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Stmt {
    Expr(Expr),
    /// `loadTo<Name>(obj)` or `loadTo(target, obj)` as a statement of its own, or their OLAP
    /// forms with a partition key before the object.
    Load {
        target: LoadTarget,
        /// The partition key of an OLAP load (`None` for other ETL types): the partitions'
        /// names and values, in order; empty for `noPartition()`, one named `_partition` for
        /// `partitionBy(value)`.
        partition: Option<Vec<(Arc<str>, Expr)>>,
        object: Expr,
        /// `object` is an object literal with distinct keys.
        literal: bool,
    },
    /// `let`/`const`/`var` with an initialiser, or `let x;` (which sets `undefined`).
    Init {
        slot: usize,
        value: Expr,
    },
    Block {
        /// `let`/`const` slots of the block, uninitialised on entry.
        lexical: Vec<usize>,
        body: Vec<Stmt>,
    },
    If {
        test: Expr,
        then: Box<Stmt>,
        otherwise: Option<Box<Stmt>>,
    },
    For {
        init: Vec<Stmt>,
        test: Option<Expr>,
        update: Option<Expr>,
        body: Box<Stmt>,
    },
    ForOf {
        slot: usize,
        iterable: Expr,
        body: Box<Stmt>,
    },
    While {
        test: Expr,
        body: Box<Stmt>,
        /// `do … while`: the body runs before the first test.
        body_first: bool,
    },
    Break,
    Continue,
    Return(Option<Expr>),
    Empty,
}

#[derive(Debug, Clone)]
pub(crate) enum LoadTarget {
    /// `loadTo<Name>`: the name is fixed.
    Named(Arc<str>),
    /// `loadTo(expr, …)`: the target must evaluate to a string.
    Computed(Box<Expr>),
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Undefined,
    Null,
    Bool(bool),
    Num(f64),
    Str(Arc<str>),
    This,
    Local(usize),
    /// `obj.key` / `obj?.key` / `obj['key']`.
    Member {
        object: Box<Expr>,
        key: Arc<str>,
        optional: bool,
    },
    /// `obj[index]` / `obj?.[index]`.
    Index {
        object: Box<Expr>,
        index: Box<Expr>,
        optional: bool,
    },
    /// The end of an optional chain: a short-circuit inside it yields `undefined` here.
    Chain(Box<Expr>),
    Unary(UnaryOperator, Box<Expr>),
    Binary(BinaryOperator, Box<Expr>, Box<Expr>),
    Logical(LogicalOperator, Box<Expr>, Box<Expr>),
    Conditional(Box<Expr>, Box<Expr>, Box<Expr>),
    Assign {
        target: Target,
        /// `None` for `=`, else the operator of `+=`, `-=`, …
        operator: Option<BinaryOperator>,
        value: Box<Expr>,
    },
    Update {
        target: Target,
        increment: bool,
        prefix: bool,
    },
    Object(Vec<(Arc<str>, Expr)>),
    Array(Vec<Expr>),
    /// A template literal: `quasis.len() == parts.len() + 1`.
    Template(Vec<Arc<str>>, Vec<Expr>),
    Sequence(Vec<Expr>),
    Math(MathFunction, Vec<Expr>),
    /// `id(doc)`.
    Id(Box<Expr>),
    /// `getMetadata(doc)`.
    GetMetadata(Box<Expr>),
    /// OLAP ETL's `$customPartitionValue`.
    CustomPartitionValue,
}

#[derive(Debug, Clone)]
pub(crate) enum Target {
    Local(usize),
    Member(Box<Expr>, Arc<str>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum MathFunction {
    Round,
    Floor,
    Ceil,
    Trunc,
    Abs,
    Min,
    Max,
}

/// The name of the one partition `partitionBy(value)` makes (RavenDB's).
pub(crate) const DEFAULT_PARTITION_NAME: &str = "_partition";

/// Scripts nesting deeper than this run in QuickJS: the interpreter recurses on the native
/// stack, QuickJS has its own limit.
const MAX_DEPTH: usize = 128;

struct Binding {
    name: String,
    slot: usize,
    constant: bool,
}

struct Compiler<'l> {
    /// Innermost scope last.
    scopes: Vec<Vec<Binding>>,
    slots: usize,
    var_slots: Vec<usize>,
    /// Names of the top-level functions: a reference to one is outside the subset.
    functions: Vec<String>,
    load_to_functions: &'l [String],
    load_form: LoadForm,
    depth: usize,
    names: Vec<Arc<str>>,
}

/// Compiles `program`, or `None` when it is outside the subset.
pub(crate) fn compile(
    program: &Program<'_>,
    load_to_functions: &[String],
    load_form: LoadForm,
) -> Option<Compiled> {
    let mut compiler = Compiler {
        scopes: vec![Vec::new()],
        slots: 0,
        var_slots: Vec::new(),
        functions: Vec::new(),
        load_to_functions,
        load_form,
        depth: 0,
        names: Vec::new(),
    };
    for statement in &program.body {
        if let Statement::FunctionDeclaration(function) = statement {
            compiler
                .functions
                .push(function.id.as_ref()?.name.as_str().to_owned());
        }
    }
    let mut var_names = Vec::new();
    collect_var_names(&program.body, &mut var_names)?;
    for name in var_names {
        if compiler.functions.contains(&name) {
            return None;
        }
        if compiler.scopes[0].iter().all(|it| it.name != name) {
            let slot = compiler.new_slot();
            compiler.var_slots.push(slot);
            compiler.scopes[0].push(Binding {
                name,
                slot,
                constant: false,
            });
        }
    }
    let (lexical, body) = compiler.block_body(&program.body, true)?;
    let body = vec![Stmt::Block { lexical, body }];
    Some(Compiled {
        load_form,
        body,
        slots: compiler.slots,
        var_slots: compiler.var_slots,
        names: compiler.names,
    })
}

/// The names every `var` in `statements` declares, nested blocks included (hoisting).
fn collect_var_names(statements: &[Statement<'_>], names: &mut Vec<String>) -> Option<()> {
    for statement in statements {
        collect_var_names_of(statement, names)?;
    }
    Some(())
}

fn collect_var_names_of(statement: &Statement<'_>, names: &mut Vec<String>) -> Option<()> {
    let mut declaration = |declaration: &VariableDeclaration<'_>| -> Option<()> {
        if declaration.kind == VariableDeclarationKind::Var {
            for declarator in &declaration.declarations {
                names.push(binding_name(&declarator.id)?.to_owned());
            }
        }
        Some(())
    };
    match statement {
        Statement::VariableDeclaration(it) => declaration(it)?,
        Statement::BlockStatement(it) => collect_var_names(&it.body, names)?,
        Statement::IfStatement(it) => {
            collect_var_names_of(&it.consequent, names)?;
            if let Some(alternate) = &it.alternate {
                collect_var_names_of(alternate, names)?;
            }
        }
        Statement::ForStatement(it) => {
            if let Some(ForStatementInit::VariableDeclaration(init)) = &it.init {
                declaration(init)?;
            }
            collect_var_names_of(&it.body, names)?;
        }
        Statement::ForOfStatement(it) => {
            if let ForStatementLeft::VariableDeclaration(left) = &it.left {
                declaration(left)?;
            }
            collect_var_names_of(&it.body, names)?;
        }
        Statement::WhileStatement(it) => collect_var_names_of(&it.body, names)?,
        Statement::DoWhileStatement(it) => collect_var_names_of(&it.body, names)?,
        _ => {}
    }
    Some(())
}

fn binding_name<'a>(pattern: &'a BindingPattern<'_>) -> Option<&'a str> {
    match pattern {
        BindingPattern::BindingIdentifier(it) => Some(it.name.as_str()),
        _ => None,
    }
}

impl Compiler<'_> {
    fn intern(&mut self, name: &str) -> Arc<str> {
        intern(&mut self.names, name)
    }

    fn new_slot(&mut self) -> usize {
        self.slots += 1;
        self.slots - 1
    }

    fn resolve(&self, name: &str) -> Option<&Binding> {
        self.scopes
            .iter()
            .rev()
            .find_map(|scope| scope.iter().rev().find(|it| it.name == name))
    }

    fn is_global(&self, name: &str) -> bool {
        self.resolve(name).is_none() && !self.functions.iter().any(|it| it == name)
    }

    /// Declares the `let`/`const` of `statements` in the current scope; returns their slots.
    fn declare_lexical(&mut self, statements: &[Statement<'_>]) -> Option<Vec<usize>> {
        let mut slots = Vec::new();
        for statement in statements {
            if let Statement::VariableDeclaration(declaration) = statement
                && declaration.kind != VariableDeclarationKind::Var
            {
                slots.extend(self.declare_lexical_declaration(declaration)?);
            }
        }
        Some(slots)
    }

    fn declare_lexical_declaration(
        &mut self,
        declaration: &VariableDeclaration<'_>,
    ) -> Option<Vec<usize>> {
        let constant = match declaration.kind {
            VariableDeclarationKind::Let => false,
            VariableDeclarationKind::Const => true,
            _ => return None,
        };
        let mut slots = Vec::new();
        for declarator in &declaration.declarations {
            let name = binding_name(&declarator.id)?.to_owned();
            let slot = self.new_slot();
            self.scopes.last_mut()?.push(Binding {
                name,
                slot,
                constant,
            });
            slots.push(slot);
        }
        Some(slots)
    }

    /// The statements of a block in a scope of their own (the function scope for the body).
    fn block_body(
        &mut self,
        statements: &[Statement<'_>],
        function_scope: bool,
    ) -> Option<(Vec<usize>, Vec<Stmt>)> {
        if !function_scope {
            self.scopes.push(Vec::new());
        }
        let res = (|| {
            let lexical = self.declare_lexical(statements)?;
            let mut body = Vec::with_capacity(statements.len());
            for statement in statements {
                if matches!(statement, Statement::FunctionDeclaration(_)) && function_scope {
                    continue;
                }
                body.push(self.statement(statement)?);
            }
            Some((lexical, body))
        })();
        if !function_scope {
            self.scopes.pop();
        }
        res
    }

    fn statement(&mut self, statement: &Statement<'_>) -> Option<Stmt> {
        self.depth += 1;
        let res = if self.depth > MAX_DEPTH {
            None
        } else {
            self.statement_inner(statement)
        };
        self.depth -= 1;
        res
    }

    fn statement_inner(&mut self, statement: &Statement<'_>) -> Option<Stmt> {
        Some(match statement {
            Statement::EmptyStatement(_) => Stmt::Empty,
            Statement::ExpressionStatement(it) => {
                if let Expression::CallExpression(call) = &it.expression
                    && let Some(load) = self.load(call)
                {
                    return load;
                }
                Stmt::Expr(self.expression(&it.expression)?)
            }
            Statement::VariableDeclaration(it) => self.declaration(it)?,
            Statement::BlockStatement(it) => {
                let (lexical, body) = self.block_body(&it.body, false)?;
                Stmt::Block { lexical, body }
            }
            Statement::IfStatement(it) => Stmt::If {
                test: self.expression(&it.test)?,
                then: Box::new(self.statement(&it.consequent)?),
                otherwise: match &it.alternate {
                    Some(alternate) => Some(Box::new(self.statement(alternate)?)),
                    None => None,
                },
            },
            Statement::ForStatement(it) => {
                self.scopes.push(Vec::new());
                // The loop's `let`/`const` start uninitialised each time the loop is entered.
                let mut lexical = Vec::new();
                let res = (|| {
                    let mut init = Vec::new();
                    match &it.init {
                        None => {}
                        Some(ForStatementInit::VariableDeclaration(declaration)) => {
                            if declaration.kind != VariableDeclarationKind::Var {
                                lexical = self.declare_lexical_declaration(declaration)?;
                            }
                            init.push(self.declaration(declaration)?);
                        }
                        Some(other) => {
                            init.push(Stmt::Expr(self.expression(other.as_expression()?)?))
                        }
                    }
                    Some(Stmt::For {
                        init,
                        test: match &it.test {
                            Some(test) => Some(self.expression(test)?),
                            None => None,
                        },
                        update: match &it.update {
                            Some(update) => Some(self.expression(update)?),
                            None => None,
                        },
                        body: Box::new(self.statement(&it.body)?),
                    })
                })();
                self.scopes.pop();
                Stmt::Block {
                    lexical,
                    body: vec![res?],
                }
            }
            Statement::ForOfStatement(it) => {
                if it.r#await {
                    return None;
                }
                self.scopes.push(Vec::new());
                let mut lexical = Vec::new();
                let res = (|| {
                    // The iterable is evaluated with the loop's own `let`/`const` in scope, in
                    // their temporal dead zone: `for (const x of x)` throws.
                    let slot = match &it.left {
                        ForStatementLeft::VariableDeclaration(declaration) => {
                            let [declarator] = declaration.declarations.as_slice() else {
                                return None;
                            };
                            if declarator.init.is_some() {
                                return None;
                            }
                            if declaration.kind == VariableDeclarationKind::Var {
                                self.resolve(binding_name(&declarator.id)?)?.slot
                            } else {
                                lexical = self.declare_lexical_declaration(declaration)?;
                                *lexical.first()?
                            }
                        }
                        ForStatementLeft::AssignmentTargetIdentifier(identifier) => {
                            let binding = self.resolve(identifier.name.as_str())?;
                            if binding.constant {
                                return None;
                            }
                            binding.slot
                        }
                        _ => return None,
                    };
                    Some(Stmt::ForOf {
                        slot,
                        iterable: self.expression(&it.right)?,
                        body: Box::new(self.statement(&it.body)?),
                    })
                })();
                self.scopes.pop();
                Stmt::Block {
                    lexical,
                    body: vec![res?],
                }
            }
            Statement::WhileStatement(it) => Stmt::While {
                test: self.expression(&it.test)?,
                body: Box::new(self.statement(&it.body)?),
                body_first: false,
            },
            Statement::DoWhileStatement(it) => Stmt::While {
                test: self.expression(&it.test)?,
                body: Box::new(self.statement(&it.body)?),
                body_first: true,
            },
            Statement::BreakStatement(it) if it.label.is_none() => Stmt::Break,
            Statement::ContinueStatement(it) if it.label.is_none() => Stmt::Continue,
            Statement::ReturnStatement(it) => Stmt::Return(match &it.argument {
                Some(argument) => Some(self.expression(argument)?),
                None => None,
            }),
            _ => return None,
        })
    }

    /// A declaration whose `let`/`const` names are already in scope.
    fn declaration(&mut self, declaration: &VariableDeclaration<'_>) -> Option<Stmt> {
        let mut body = Vec::new();
        for declarator in &declaration.declarations {
            let slot = self.resolve(binding_name(&declarator.id)?)?.slot;
            let value = match (&declarator.init, declaration.kind) {
                (Some(init), _) => self.expression(init)?,
                (None, VariableDeclarationKind::Var) => continue,
                (None, VariableDeclarationKind::Let) => Expr::Undefined,
                (None, _) => return None,
            };
            body.push(Stmt::Init { slot, value });
        }
        Some(Stmt::Block {
            lexical: Vec::new(),
            body,
        })
    }

    /// `loadTo<Name>(obj)` or `loadTo(target, obj)` (OLAP: `loadTo<Name>(key, obj)` or
    /// `loadTo(target, key, obj)`), or `None` when `call` is not a load.
    fn load(&mut self, call: &CallExpression<'_>) -> Option<Option<Stmt>> {
        let Expression::Identifier(callee) = &call.callee else {
            return None;
        };
        let name = callee.name.as_str();
        if !name.starts_with("loadTo") || !self.is_global(name) {
            return None;
        }
        Some((|| {
            let n_target = usize::from(name == "loadTo");
            let n_key = usize::from(self.load_form == LoadForm::Olap);
            // Arguments after the object (Queue ETL's routing key and attributes) are left to
            // QuickJS, which hands them to the destination; in OLAP ETL they are an error.
            if call.arguments.len() > n_target + n_key + 1 {
                return None;
            }
            let target = if name == "loadTo" {
                LoadTarget::Computed(Box::new(
                    self.expression(call.arguments.first()?.as_expression()?)?,
                ))
            } else if self.load_to_functions.iter().any(|it| it == name) {
                LoadTarget::Named(Arc::from(&name["loadTo".len()..]))
            } else {
                return None;
            };
            let partition = match self.load_form {
                LoadForm::Etl => None,
                LoadForm::Olap => Some(self.partition_key(call.arguments.get(n_target)?)?),
            };
            let object = match call.arguments.get(n_target + n_key) {
                Some(argument) => self.expression(argument.as_expression()?)?,
                None => Expr::Undefined,
            };
            let literal = match &object {
                Expr::Object(properties) => properties
                    .iter()
                    .enumerate()
                    .all(|(idx, (key, _))| properties[..idx].iter().all(|(other, _)| other != key)),
                _ => false,
            };
            Some(Stmt::Load {
                target,
                partition,
                object,
                literal,
            })
        })())
    }

    /// An OLAP load's key, when it is written in the call: `noPartition()`, `partitionBy(value)`
    /// or `partitionBy(['name', value], …)` with literal names. Anything else (a key made
    /// elsewhere, a computed name, an error QuickJS reports) is outside the subset.
    fn partition_key(&mut self, argument: &Argument<'_>) -> Option<Vec<(Arc<str>, Expr)>> {
        let Expression::CallExpression(call) = argument.as_expression()? else {
            return None;
        };
        let Expression::Identifier(callee) = &call.callee else {
            return None;
        };
        if call.optional || !self.is_global(callee.name.as_str()) {
            return None;
        }
        match callee.name.as_str() {
            "noPartition" if call.arguments.is_empty() => Some(Vec::new()),
            "partitionBy" => match call.arguments.as_slice() {
                [] => None,
                [argument] if !matches!(argument, Argument::ArrayExpression(_)) => Some(vec![(
                    Arc::from(DEFAULT_PARTITION_NAME),
                    self.expression(argument.as_expression()?)?,
                )]),
                arguments => arguments
                    .iter()
                    .map(|argument| {
                        let Argument::ArrayExpression(pair) = argument else {
                            return None;
                        };
                        let [name, value] = pair.elements.as_slice() else {
                            return None;
                        };
                        let ArrayExpressionElement::StringLiteral(name) = name else {
                            return None;
                        };
                        if name.lone_surrogates || name.value.is_empty() {
                            return None;
                        }
                        let value = match value {
                            ArrayExpressionElement::SpreadElement(_)
                            | ArrayExpressionElement::Elision(_) => return None,
                            value => self.expression(value.as_expression()?)?,
                        };
                        Some((Arc::from(name.value.as_str()), value))
                    })
                    .collect(),
            },
            _ => None,
        }
    }

    fn arguments(&mut self, arguments: &[Argument<'_>]) -> Option<Vec<Expr>> {
        arguments
            .iter()
            .map(|argument| self.expression(argument.as_expression()?))
            .collect()
    }

    fn expression(&mut self, expression: &Expression<'_>) -> Option<Expr> {
        self.depth += 1;
        let res = if self.depth > MAX_DEPTH {
            None
        } else {
            self.expression_inner(expression)
        };
        self.depth -= 1;
        res
    }

    #[allow(clippy::too_many_lines)]
    fn expression_inner(&mut self, expression: &Expression<'_>) -> Option<Expr> {
        Some(match expression {
            Expression::BooleanLiteral(it) => Expr::Bool(it.value),
            Expression::NullLiteral(_) => Expr::Null,
            Expression::NumericLiteral(it) => Expr::Num(it.value),
            Expression::StringLiteral(it) if !it.lone_surrogates => {
                Expr::Str(Arc::from(it.value.as_str()))
            }
            Expression::TemplateLiteral(it) => {
                let mut quasis = Vec::with_capacity(it.quasis.len());
                for quasi in &it.quasis {
                    if quasi.lone_surrogates {
                        return None;
                    }
                    quasis.push(Arc::from(quasi.value.cooked.as_ref()?.as_str()));
                }
                let parts = it
                    .expressions
                    .iter()
                    .map(|part| self.expression(part))
                    .collect::<Option<Vec<_>>>()?;
                Expr::Template(quasis, parts)
            }
            Expression::Identifier(it) => {
                let name = it.name.as_str();
                match self.resolve(name) {
                    Some(binding) => Expr::Local(binding.slot),
                    None if !self.is_global(name) => return None,
                    None => match name {
                        "$customPartitionValue" if self.load_form == LoadForm::Olap => {
                            Expr::CustomPartitionValue
                        }
                        "undefined" => Expr::Undefined,
                        "NaN" => Expr::Num(f64::NAN),
                        "Infinity" => Expr::Num(f64::INFINITY),
                        _ => return None,
                    },
                }
            }
            Expression::ThisExpression(_) => Expr::This,
            Expression::ParenthesizedExpression(it) => self.expression(&it.expression)?,
            Expression::StaticMemberExpression(it) => Expr::Member {
                object: Box::new(self.expression(&it.object)?),
                key: self.intern(it.property.name.as_str()),
                optional: it.optional,
            },
            Expression::ComputedMemberExpression(it) => {
                self.computed_member(&it.object, &it.expression, it.optional)?
            }
            Expression::ChainExpression(it) => Expr::Chain(Box::new(match &it.expression {
                ChainElement::CallExpression(call) => self.call(call)?,
                ChainElement::StaticMemberExpression(member) => Expr::Member {
                    object: Box::new(self.expression(&member.object)?),
                    key: self.intern(member.property.name.as_str()),
                    optional: member.optional,
                },
                ChainElement::ComputedMemberExpression(member) => {
                    self.computed_member(&member.object, &member.expression, member.optional)?
                }
                _ => return None,
            })),
            Expression::CallExpression(it) => self.call(it)?,
            Expression::UnaryExpression(it) => match it.operator {
                UnaryOperator::UnaryPlus
                | UnaryOperator::UnaryNegation
                | UnaryOperator::LogicalNot
                | UnaryOperator::Typeof
                | UnaryOperator::Void => {
                    Expr::Unary(it.operator, Box::new(self.expression(&it.argument)?))
                }
                _ => return None,
            },
            Expression::BinaryExpression(it) => {
                if !supported_binary(it.operator) {
                    return None;
                }
                Expr::Binary(
                    it.operator,
                    Box::new(self.expression(&it.left)?),
                    Box::new(self.expression(&it.right)?),
                )
            }
            Expression::LogicalExpression(it) => Expr::Logical(
                it.operator,
                Box::new(self.expression(&it.left)?),
                Box::new(self.expression(&it.right)?),
            ),
            Expression::ConditionalExpression(it) => Expr::Conditional(
                Box::new(self.expression(&it.test)?),
                Box::new(self.expression(&it.consequent)?),
                Box::new(self.expression(&it.alternate)?),
            ),
            Expression::AssignmentExpression(it) => {
                let operator = match it.operator {
                    AssignmentOperator::Assign => None,
                    AssignmentOperator::Addition => Some(BinaryOperator::Addition),
                    AssignmentOperator::Subtraction => Some(BinaryOperator::Subtraction),
                    AssignmentOperator::Multiplication => Some(BinaryOperator::Multiplication),
                    AssignmentOperator::Division => Some(BinaryOperator::Division),
                    AssignmentOperator::Remainder => Some(BinaryOperator::Remainder),
                    _ => return None,
                };
                let target = self.target(it.left.as_simple_assignment_target()?)?;
                Expr::Assign {
                    target,
                    operator,
                    value: Box::new(self.expression(&it.right)?),
                }
            }
            Expression::UpdateExpression(it) => {
                let target = self.target(&it.argument)?;
                Expr::Update {
                    target,
                    increment: it.operator == UpdateOperator::Increment,
                    prefix: it.prefix,
                }
            }
            Expression::ObjectExpression(it) => {
                let mut properties = Vec::with_capacity(it.properties.len());
                for property in &it.properties {
                    let ObjectPropertyKind::ObjectProperty(property) = property else {
                        return None;
                    };
                    if property.kind != PropertyKind::Init || property.method || property.computed {
                        return None;
                    }
                    let key = match &property.key {
                        PropertyKey::StaticIdentifier(it) => it.name.as_str(),
                        PropertyKey::StringLiteral(it) if !it.lone_surrogates => it.value.as_str(),
                        _ => return None,
                    };
                    if is_index_like(key) {
                        return None;
                    }
                    let key = self.intern(key);
                    properties.push((key, self.expression(&property.value)?));
                }
                Expr::Object(properties)
            }
            Expression::ArrayExpression(it) => {
                let mut items = Vec::with_capacity(it.elements.len());
                for element in &it.elements {
                    if matches!(
                        element,
                        ArrayExpressionElement::SpreadElement(_)
                            | ArrayExpressionElement::Elision(_)
                    ) {
                        return None;
                    }
                    items.push(self.expression(element.as_expression()?)?);
                }
                Expr::Array(items)
            }
            Expression::SequenceExpression(it) => Expr::Sequence(
                it.expressions
                    .iter()
                    .map(|part| self.expression(part))
                    .collect::<Option<Vec<_>>>()?,
            ),
            _ => return None,
        })
    }

    fn computed_member(
        &mut self,
        object: &Expression<'_>,
        index: &Expression<'_>,
        optional: bool,
    ) -> Option<Expr> {
        let object = Box::new(self.expression(object)?);
        if let Expression::StringLiteral(key) = index
            && !key.lone_surrogates
        {
            return Some(Expr::Member {
                object,
                key: self.intern(key.value.as_str()),
                optional,
            });
        }
        Some(Expr::Index {
            object,
            index: Box::new(self.expression(index)?),
            optional,
        })
    }

    /// What an assignment or `++`/`--` writes: a local that is not `const`, or `obj.key`.
    fn target(&mut self, target: &SimpleAssignmentTarget<'_>) -> Option<Target> {
        match target {
            SimpleAssignmentTarget::AssignmentTargetIdentifier(identifier) => {
                self.local_target(identifier.name.as_str())
            }
            SimpleAssignmentTarget::StaticMemberExpression(member) if !member.optional => {
                self.member_target(&member.object, member.property.name.as_str())
            }
            _ => None,
        }
    }

    fn local_target(&self, name: &str) -> Option<Target> {
        let binding = self.resolve(name)?;
        (!binding.constant).then_some(Target::Local(binding.slot))
    }

    fn member_target(&mut self, object: &Expression<'_>, key: &str) -> Option<Target> {
        if is_index_like(key) {
            return None;
        }
        let key = self.intern(key);
        Some(Target::Member(Box::new(self.expression(object)?), key))
    }

    /// The calls the interpreter knows: `Math.<fn>(…)`, `id(doc)`, `getMetadata(doc)`.
    fn call(&mut self, call: &CallExpression<'_>) -> Option<Expr> {
        if call.optional {
            return None;
        }
        let arguments = self.arguments(&call.arguments)?;
        match &call.callee {
            Expression::Identifier(callee) if self.is_global(callee.name.as_str()) => {
                // One argument only: with more, the order of evaluation around the call would
                // have to be modelled.
                let [argument] = <[Expr; 1]>::try_from(arguments).ok()?;
                match callee.name.as_str() {
                    "id" => Some(Expr::Id(Box::new(argument))),
                    "getMetadata" => Some(Expr::GetMetadata(Box::new(argument))),
                    _ => None,
                }
            }
            Expression::StaticMemberExpression(member) => {
                let Expression::Identifier(object) = &member.object else {
                    return None;
                };
                if object.name.as_str() != "Math" || !self.is_global("Math") {
                    return None;
                }
                let function = match member.property.name.as_str() {
                    "round" => MathFunction::Round,
                    "floor" => MathFunction::Floor,
                    "ceil" => MathFunction::Ceil,
                    "trunc" => MathFunction::Trunc,
                    "abs" => MathFunction::Abs,
                    "min" => MathFunction::Min,
                    "max" => MathFunction::Max,
                    _ => return None,
                };
                Some(Expr::Math(function, arguments))
            }
            _ => None,
        }
    }
}

/// The one `Arc` for `name` in `names`, added when it is not there yet.
pub(crate) fn intern(names: &mut Vec<Arc<str>>, name: &str) -> Arc<str> {
    if let Some(known) = names.iter().find(|it| &***it == name) {
        return Arc::clone(known);
    }
    let name: Arc<str> = Arc::from(name);
    names.push(Arc::clone(&name));
    name
}

fn supported_binary(operator: BinaryOperator) -> bool {
    matches!(
        operator,
        BinaryOperator::Equality
            | BinaryOperator::Inequality
            | BinaryOperator::StrictEquality
            | BinaryOperator::StrictInequality
            | BinaryOperator::LessThan
            | BinaryOperator::LessEqualThan
            | BinaryOperator::GreaterThan
            | BinaryOperator::GreaterEqualThan
            | BinaryOperator::Addition
            | BinaryOperator::Subtraction
            | BinaryOperator::Multiplication
            | BinaryOperator::Division
            | BinaryOperator::Remainder
    )
}
