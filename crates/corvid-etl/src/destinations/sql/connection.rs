//! SQL connection strings: an ADO.NET provider name (`FactoryName`) and a `key=value;` string
//! in the forms those providers accept, parsed into what Corvid's drivers need. The password
//! is kept out of every `Debug`, `Display` and error message.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::SqlConnectionString;

/// The database engines Corvid writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlProvider {
    Postgres,
    MySql,
    Sqlite,
}

impl SqlProvider {
    /// The provider for a `FactoryName`; `Err` says why it cannot be used.
    pub fn from_factory(factory: &str) -> Result<SqlProvider, String> {
        match factory.trim() {
            "Npgsql" => Ok(SqlProvider::Postgres),
            "MySql.Data.MySqlClient" | "MySqlConnector.MySqlConnectorFactory" => {
                Ok(SqlProvider::MySql)
            }
            "Microsoft.Data.Sqlite" | "System.Data.SQLite" => Ok(SqlProvider::Sqlite),
            "System.Data.SqlClient" | "Microsoft.Data.SqlClient" => {
                Err(format!("`FactoryName` `{factory}` (SQL Server) is not supported yet"))
            }
            "Oracle.ManagedDataAccess.Client" => {
                Err(format!("`FactoryName` `{factory}` (Oracle) is not supported yet"))
            }
            "" => Err("`FactoryName` must not be empty; use `Npgsql`, `MySql.Data.MySqlClient`, `MySqlConnector.MySqlConnectorFactory` or `Microsoft.Data.Sqlite`".to_owned()),
            other => Err(format!(
                "unknown `FactoryName` `{other}`; use `Npgsql`, `MySql.Data.MySqlClient`, `MySqlConnector.MySqlConnectorFactory` or `Microsoft.Data.Sqlite`"
            )),
        }
    }
}

/// Whether and how a connection uses TLS (`SslMode`, with Npgsql's and MySqlConnector's
/// names). For PostgreSQL, `Prefer` and `Require` encrypt without checking the server's
/// certificate (as libpq and Npgsql 8 do); `VerifyCa` checks that a trusted authority issued
/// it, `VerifyFull` also that it names the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    /// TLS when the server offers it (PostgreSQL's default, as in Npgsql).
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A parsed connection string.
#[derive(Clone, PartialEq)]
pub struct SqlTarget {
    pub provider: SqlProvider,
    /// Host name or address (PostgreSQL, MySQL).
    pub host: String,
    pub port: u16,
    /// Database name; for SQLite the file path.
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// `SslMode`/`Ssl Mode`. MySQL/MariaDB connections have no TLS yet: `Prefer` there is
    /// a plain connection, and the modes that require TLS are refused.
    pub tls: TlsMode,
    /// PostgreSQL `Root Certificate` (`SslRootCert`): a PEM file of the authorities the
    /// verifying modes trust instead of the system's.
    pub root_certificate: Option<PathBuf>,
    pub connect_timeout: Option<Duration>,
    /// MySQL/MariaDB: whether rows may be sent with `LOAD DATA LOCAL INFILE` when the server
    /// allows it (`AllowLoadLocalInfile`, default true; Corvid only ever sends the batch's own
    /// rows this way, never a file).
    pub allow_load_local_infile: bool,
}

impl fmt::Debug for SqlTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlTarget")
            .field("provider", &self.provider)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .field("root_certificate", &self.root_certificate)
            .field("allow_load_local_infile", &self.allow_load_local_infile)
            .finish()
    }
}

impl fmt::Display for SqlTarget {
    /// RavenDB's destination display string: `{database}@{server}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.provider {
            SqlProvider::Sqlite => write!(f, "{}", self.database),
            _ => write!(f, "{}@{}:{}", self.database, self.host, self.port),
        }
    }
}

impl SqlTarget {
    /// The SQLite file.
    pub fn sqlite_path(&self) -> PathBuf {
        PathBuf::from(&self.database)
    }
}

/// The message of a failed connection attempt that reached no database server of the
/// expected kind: only what the local network stack knows (refused, timed out, unreachable),
/// never what the remote end sent, so that a connection string cannot be used to read other
/// hosts' services (issue 18 finding 4). `io` is the I/O error found among the causes, if any.
pub fn generic_connect_error(
    host: &str,
    port: u16,
    io: Option<&std::io::Error>,
    server: &str,
) -> String {
    use std::io::ErrorKind;
    let why = match io.map(std::io::Error::kind) {
        Some(ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
        Some(ErrorKind::TimedOut | ErrorKind::WouldBlock) => "timed out".to_owned(),
        Some(ErrorKind::NotFound) => "host not found".to_owned(),
        Some(ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable) => {
            "host unreachable".to_owned()
        }
        Some(ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
            format!("the connection was closed (not a {server} server?)")
        }
        _ => format!("not a {server} server"),
    };
    format!("could not connect to {host}:{port}: {why}")
}

/// The first I/O error among an error's causes.
pub(crate) fn io_cause<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a std::io::Error> {
    let mut current = Some(error);
    while let Some(it) = current {
        if let Some(io) = it.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        current = it.source();
    }
    None
}

/// Parses a `FactoryName` and connection string. Error messages never quote the string
/// itself (it may hold a password), only the key at fault.
pub fn parse(factory: &str, connection_string: &str) -> Result<SqlTarget, String> {
    let provider = SqlProvider::from_factory(factory)?;
    let mut target = SqlTarget {
        provider,
        host: String::new(),
        port: match provider {
            SqlProvider::Postgres => 5432,
            SqlProvider::MySql => 3306,
            SqlProvider::Sqlite => 0,
        },
        database: String::new(),
        user: None,
        password: None,
        tls: match provider {
            SqlProvider::Postgres => TlsMode::Prefer,
            _ => TlsMode::Disable,
        },
        root_certificate: None,
        connect_timeout: None,
        allow_load_local_infile: true,
    };
    for (key, value) in pairs(connection_string)? {
        let normalized: String = key
            .chars()
            .filter(|it| !it.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        match (provider, normalized.as_str()) {
            (SqlProvider::Sqlite, "datasource" | "filename" | "data source") => {
                target.database = value
            }
            (SqlProvider::Sqlite, "mode" | "cache" | "foreignkeys" | "password" | "pooling") => {
                if normalized == "password" {
                    return Err("`Password` (an encrypted SQLite file) is not supported".to_owned());
                }
            }
            (SqlProvider::Sqlite, _) => {
                return Err(format!("unknown key `{key}` in a SQLite connection string"));
            }
            (_, "host" | "server" | "datasource" | "address" | "addr" | "networkaddress") => {
                // `Server=host:port` or `host,port` as some drivers write it.
                let (host, port) = split_host_port(&value)?;
                target.host = host;
                if let Some(port) = port {
                    target.port = port;
                }
            }
            (_, "port") => {
                target.port = value
                    .parse()
                    .map_err(|_| "`Port` must be a number from 1 to 65535".to_owned())?
            }
            (_, "database" | "initialcatalog") => target.database = value,
            (_, "username" | "userid" | "user" | "uid") => target.user = Some(value),
            (_, "password" | "pwd") => target.password = Some(value),
            (_, "sslmode") => target.tls = tls_mode(provider, &value)?,
            (SqlProvider::Postgres, "rootcertificate" | "sslrootcert") => {
                target.root_certificate = Some(PathBuf::from(value))
            }
            (SqlProvider::MySql, "allowloadlocalinfile") => {
                target.allow_load_local_infile = match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" => true,
                    "false" | "no" | "0" => false,
                    _ => return Err(format!("`{key}` must be `true` or `false`")),
                }
            }
            (_, "timeout" | "connecttimeout" | "connectiontimeout") => {
                let seconds: u64 = value
                    .parse()
                    .map_err(|_| format!("`{key}` must be a number of seconds"))?;
                target.connect_timeout = Some(Duration::from_secs(seconds));
            }
            // Settings of the .NET providers' own pools and behaviour: accepted, not needed.
            (
                _,
                "pooling"
                | "minpoolsize"
                | "maxpoolsize"
                | "commandtimeout"
                | "defaultcommandtimeout"
                | "applicationname"
                | "characterset"
                | "charset"
                | "allowuservariables"
                | "convertzerodatetime"
                | "allowzerodatetime"
                | "includeerrordetail"
                | "trustservercertificate"
                | "keepalive"
                | "searchpath"
                | "encoding"
                | "connectionlifetime"
                | "connectionreset"
                | "persistsecurityinfo",
            ) => {}
            _ => return Err(format!("unknown key `{key}` in the connection string")),
        }
    }
    match provider {
        SqlProvider::Sqlite if target.database.trim().is_empty() => {
            Err("a SQLite connection string needs `Data Source=<file>`".to_owned())
        }
        SqlProvider::Sqlite => Ok(target),
        _ if target.host.trim().is_empty() => {
            Err("the connection string needs `Host` (or `Server`)".to_owned())
        }
        _ if target.database.trim().is_empty() => {
            Err("the connection string needs `Database`".to_owned())
        }
        _ => Ok(target),
    }
}

/// `SslMode=value` for a provider.
fn tls_mode(provider: SqlProvider, value: &str) -> Result<TlsMode, String> {
    let normalized: String = value
        .chars()
        .filter(|it| !matches!(it, '-' | '_' | ' '))
        .collect::<String>()
        .to_ascii_lowercase();
    let mode = match normalized.as_str() {
        "disable" | "disabled" | "none" => TlsMode::Disable,
        "allow" | "prefer" | "preferred" => TlsMode::Prefer,
        "require" | "required" => TlsMode::Require,
        "verifyca" => TlsMode::VerifyCa,
        "verifyfull" => TlsMode::VerifyFull,
        _ => {
            return Err(format!(
                "`SslMode={value}` is not one of `Disable`, `Prefer`, `Require`, `VerifyCA`, `VerifyFull`"
            ));
        }
    };
    if provider == SqlProvider::MySql && !matches!(mode, TlsMode::Disable | TlsMode::Prefer) {
        return Err(format!(
            "`SslMode={value}`: TLS connections to MySQL/MariaDB are not supported yet; use `SslMode=None` or `Preferred` (a plain connection)"
        ));
    }
    Ok(mode)
}

/// What `GET` answers show instead of a password (and instead of a whole connection string
/// that does not parse).
pub const REDACTED_PASSWORD: &str = "*****";

/// The connection string as `GET` answers show it: the value of `Password`/`Pwd` replaced by
/// `*****`. A string that does not parse is hidden whole, since where a password hides in it
/// cannot be known.
pub fn redact_password(connection_string: &str) -> String {
    let Ok(pairs) = pairs(connection_string) else {
        return REDACTED_PASSWORD.to_owned();
    };
    join_pairs(pairs.into_iter().map(|(key, value)| {
        if is_password_key(&key) {
            (key, REDACTED_PASSWORD.to_owned())
        } else {
            (key, value)
        }
    }))
}

/// The connection string to store when `new` replaces `stored` (same name): a client that
/// edits what `GET` showed sends the password back as `*****`, and then the stored password
/// is kept, so that a password never has to leave the server to survive an edit.
///
/// `new` is returned as it is when it holds no `*****` password, or when `stored` has no
/// password to restore. It is an `Err` to keep the password while pointing the string at
/// another provider, host or port: the stored password would be sent to a server it was not
/// given for (a way to read it for anyone who may edit connection strings).
pub fn restore_password(
    new: &SqlConnectionString,
    stored: &SqlConnectionString,
) -> Result<String, String> {
    let unchanged = new.connection_string == redact_password(&stored.connection_string);
    if unchanged && new.factory_name.trim() == stored.factory_name.trim() {
        return Ok(stored.connection_string.clone());
    }
    let Ok(new_pairs) = pairs(&new.connection_string) else {
        return Ok(new.connection_string.clone());
    };
    let redacted = new_pairs
        .iter()
        .any(|(key, value)| is_password_key(key) && value == REDACTED_PASSWORD);
    if !redacted {
        return Ok(new.connection_string.clone());
    }
    let stored_password = pairs(&stored.connection_string)
        .ok()
        .and_then(|it| it.into_iter().find(|(key, _)| is_password_key(key)))
        .map(|(_, value)| value);
    let Some(stored_password) = stored_password else {
        return Ok(new.connection_string.clone());
    };
    let same_server = match (
        parse(&new.factory_name, &new.connection_string),
        parse(&stored.factory_name, &stored.connection_string),
    ) {
        (Ok(new_target), Ok(stored_target)) => {
            new_target.provider == stored_target.provider
                && new_target.host.eq_ignore_ascii_case(&stored_target.host)
                && new_target.port == stored_target.port
        }
        // Validation says what is wrong with the new string; nothing is restored into it.
        (Err(_), _) => return Ok(new.connection_string.clone()),
        (Ok(_), Err(_)) => false,
    };
    if !same_server {
        return Err(format!(
            "the password shows as `{REDACTED_PASSWORD}` and is kept only for the same server; type the password again to connect to another provider, host or port"
        ));
    }
    Ok(join_pairs(new_pairs.into_iter().map(|(key, value)| {
        if is_password_key(&key) && value == REDACTED_PASSWORD {
            (key, stored_password.clone())
        } else {
            (key, value)
        }
    })))
}

fn is_password_key(key: &str) -> bool {
    let normalized = key.replace(' ', "").to_ascii_lowercase();
    normalized == "password" || normalized == "pwd"
}

/// `key=value;…`, quoting the values that need it so that `pairs` reads them back.
fn join_pairs(pairs: impl Iterator<Item = (String, String)>) -> String {
    pairs
        .map(|(key, value)| {
            if value.contains([';', '\'', '"']) || value != value.trim() {
                return format!("{key}=\"{}\"", value.replace('"', "\"\""));
            }
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// Splits `key=value;key=value`, honouring values quoted with `"` or `'` (in which `;` is
/// allowed and a doubled quote stands for one).
fn pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut result = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut key = String::new();
        for ch in chars.by_ref() {
            if ch == '=' {
                break;
            }
            if ch == ';' && key.trim().is_empty() {
                key.clear();
                continue;
            }
            if ch == ';' {
                return Err(format!(
                    "`{}` has no value (expected key=value)",
                    key.trim()
                ));
            }
            key.push(ch);
        }
        let key = key.trim().to_owned();
        if key.is_empty() {
            if chars.peek().is_none() {
                return Ok(result);
            }
            return Err("the connection string has a value without a key".to_owned());
        }
        while chars.peek().is_some_and(|it| it.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        match chars.peek().copied() {
            Some(quote @ ('"' | '\'')) => {
                chars.next();
                let mut closed = false;
                while let Some(ch) = chars.next() {
                    if ch == quote {
                        if chars.peek() == Some(&quote) {
                            chars.next();
                            value.push(quote);
                            continue;
                        }
                        closed = true;
                        break;
                    }
                    value.push(ch);
                }
                if !closed {
                    return Err(format!("the value of `{key}` has no closing quote"));
                }
                for ch in chars.by_ref() {
                    if ch == ';' {
                        break;
                    }
                    if !ch.is_whitespace() {
                        return Err(format!("unexpected text after the quoted value of `{key}`"));
                    }
                }
            }
            _ => {
                for ch in chars.by_ref() {
                    if ch == ';' {
                        break;
                    }
                    value.push(ch);
                }
                value = value.trim().to_owned();
            }
        }
        result.push((key, value));
        if chars.peek().is_none() {
            return Ok(result);
        }
    }
}

fn split_host_port(value: &str) -> Result<(String, Option<u16>), String> {
    let value = value.trim();
    let value = value.strip_prefix("tcp:").unwrap_or(value);
    for separator in [',', ':'] {
        // `host:port`, but not an IPv6 address.
        if let Some((host, port)) = value.rsplit_once(separator)
            && !host.contains(':')
        {
            let port = port
                .trim()
                .parse()
                .map_err(|_| "the port after the host must be a number".to_owned())?;
            return Ok((host.trim().to_owned(), Some(port)));
        }
    }
    Ok((value.to_owned(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_npgsql_strings() {
        let target = parse(
            "Npgsql",
            "Host=127.0.0.1;Port=5433;Database=test;Username=postgres;Password='a;b''c'",
        )
        .unwrap();
        assert_eq!(target.provider, SqlProvider::Postgres);
        assert_eq!(target.host, "127.0.0.1");
        assert_eq!(target.port, 5433);
        assert_eq!(target.database, "test");
        assert_eq!(target.user.as_deref(), Some("postgres"));
        assert_eq!(target.password.as_deref(), Some("a;b'c"));
        assert_eq!(target.to_string(), "test@127.0.0.1:5433");
        assert!(!format!("{target:?}").contains("a;b"));
    }

    #[test]
    fn parses_mysql_strings() {
        let target = parse(
            "MySql.Data.MySqlClient",
            "server=localhost,3307; database=shop; uid=root; pwd=secret; SslMode=None;",
        )
        .unwrap();
        assert_eq!(target.provider, SqlProvider::MySql);
        assert_eq!((target.host.as_str(), target.port), ("localhost", 3307));
        assert_eq!(target.user.as_deref(), Some("root"));
        let connector = parse(
            "MySqlConnector.MySqlConnectorFactory",
            "Server=127.0.0.1;User ID=root;Database=test",
        )
        .unwrap();
        assert_eq!(
            (connector.port, connector.user.as_deref()),
            (3306, Some("root"))
        );
        assert!(connector.allow_load_local_infile);
        let without = parse(
            "MySqlConnector.MySqlConnectorFactory",
            "Server=h;Database=d;Allow Load Local Infile=False",
        )
        .unwrap();
        assert!(!without.allow_load_local_infile);
        assert!(
            parse(
                "MySqlConnector.MySqlConnectorFactory",
                "Server=h;Database=d;AllowLoadLocalInfile=maybe",
            )
            .unwrap_err()
            .contains("must be `true` or `false`")
        );
    }

    #[test]
    fn parses_tls_modes() {
        let mode = |factory: &str, text: &str| parse(factory, text).unwrap().tls;
        let pg = |extra: &str| mode("Npgsql", &format!("Host=h;Database=d{extra}"));
        assert_eq!(pg(""), TlsMode::Prefer);
        assert_eq!(pg(";SslMode=Disable"), TlsMode::Disable);
        assert_eq!(pg(";Ssl Mode=Allow"), TlsMode::Prefer);
        assert_eq!(pg(";sslmode=require"), TlsMode::Require);
        assert_eq!(pg(";SslMode=VerifyCA"), TlsMode::VerifyCa);
        assert_eq!(pg(";sslmode=verify-full"), TlsMode::VerifyFull);
        let target = parse("Npgsql", "Host=h;Database=d;Root Certificate=/x/ca.pem").unwrap();
        assert_eq!(target.root_certificate, Some(PathBuf::from("/x/ca.pem")));
        let my = "MySql.Data.MySqlClient";
        assert_eq!(mode(my, "Server=h;Database=d"), TlsMode::Disable);
        assert_eq!(
            mode(my, "Server=h;Database=d;SslMode=Preferred"),
            TlsMode::Prefer
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_password("Host=h;Password='a;b';Database=d"),
            "Host=h;Password=*****;Database=d"
        );
        assert_eq!(
            redact_password("Server=h;PWD=x;Uid=u"),
            "Server=h;PWD=*****;Uid=u"
        );
        assert_eq!(redact_password("Password='unterminated"), "*****");
        assert_eq!(
            redact_password("Data Source=\"a;b.db\""),
            "Data Source=\"a;b.db\""
        );
    }

    fn sql(factory: &str, connection_string: &str) -> SqlConnectionString {
        SqlConnectionString {
            name: "pg".to_owned(),
            connection_string: connection_string.to_owned(),
            factory_name: factory.to_owned(),
        }
    }

    fn restore(new: &str, stored: &str) -> Result<String, String> {
        restore_password(&sql("Npgsql", new), &sql("Npgsql", stored))
    }

    #[test]
    fn an_unchanged_redacted_string_keeps_the_stored_one() {
        let stored = "Host=h;Password='a;b';Database=d";
        assert_eq!(restore(&redact_password(stored), stored).unwrap(), stored);
        // A stored string that does not parse shows as `*****` whole.
        assert_eq!(
            restore("*****", "Password='unterminated").unwrap(),
            "Password='unterminated"
        );
    }

    #[test]
    fn an_edited_string_with_the_placeholder_gets_the_stored_password() {
        let restored = restore(
            "Host=h;Password=*****;Database=other;Timeout=5",
            "Host=h;Password='a;b';Database=d",
        )
        .unwrap();
        assert_eq!(restored, "Host=h;Password=\"a;b\";Database=other;Timeout=5");
        assert_eq!(
            parse("Npgsql", &restored).unwrap().password.as_deref(),
            Some("a;b")
        );
        // Written as `Pwd` this time, the host in another case.
        assert_eq!(
            restore(
                "Server=H;Pwd=*****;Database=d",
                "Host=h;Password=s3cret;Database=d"
            )
            .unwrap(),
            "Server=H;Pwd=s3cret;Database=d"
        );
    }

    #[test]
    fn a_new_password_or_nothing_to_restore_is_stored_as_given() {
        assert_eq!(
            restore("Host=h;Password=new", "Host=h;Password=old").unwrap(),
            "Host=h;Password=new"
        );
        assert_eq!(
            restore("Host=h;Password=*****", "Host=h;Username=u").unwrap(),
            "Host=h;Password=*****"
        );
        assert_eq!(
            restore("Host='h", "Host=h;Password=old").unwrap(),
            "Host='h"
        );
    }

    #[test]
    fn the_stored_password_never_goes_to_another_server() {
        let stored = "Host=h;Port=5432;Password=old;Database=d";
        for new in [
            "Host=evil;Password=*****;Database=d",
            "Host=h;Port=5433;Password=*****;Database=d",
        ] {
            let error = restore(new, stored).unwrap_err();
            assert!(error.contains("type the password again"), "{error}");
        }
        let error = restore_password(
            &sql(
                "MySqlConnector.MySqlConnectorFactory",
                "Server=h;Port=5432;Pwd=*****;Database=d",
            ),
            &sql("Npgsql", stored),
        )
        .unwrap_err();
        assert!(error.contains("another provider"), "{error}");
    }

    #[test]
    fn parses_sqlite_strings() {
        let target = parse("Microsoft.Data.Sqlite", "Data Source=/tmp/x.db").unwrap();
        assert_eq!(target.sqlite_path(), PathBuf::from("/tmp/x.db"));
    }

    #[test]
    fn refuses_what_it_cannot_use_without_leaking_the_password() {
        let cases = [
            (
                "System.Data.SqlClient",
                "Server=x;Database=y",
                "not supported yet",
            ),
            (
                "Oracle.ManagedDataAccess.Client",
                "Data Source=x",
                "not supported yet",
            ),
            ("Foo", "Host=x", "unknown `FactoryName`"),
            (
                "Npgsql",
                "Host=x;Password=hunter2;Bogus=1",
                "unknown key `Bogus`",
            ),
            ("Npgsql", "Password=hunter2;Database=d", "needs `Host`"),
            ("Npgsql", "Host=x;Password=hunter2", "needs `Database`"),
            (
                "Npgsql",
                "Host=x;Port=hunter2;Database=d",
                "`Port` must be a number",
            ),
            (
                "MySqlConnector.MySqlConnectorFactory",
                "Server=x;Database=d;SslMode=Required",
                "TLS connections to MySQL/MariaDB are not supported yet",
            ),
            (
                "Npgsql",
                "Host=x;Database=d;SslMode=Sometimes",
                "`VerifyFull`",
            ),
            ("Npgsql", "Host=x;Password='hunter2", "no closing quote"),
            ("Microsoft.Data.Sqlite", "Mode=Memory", "Data Source"),
        ];
        for (factory, text, expected) in cases {
            let error = parse(factory, text).unwrap_err();
            assert!(error.contains(expected), "{factory} {text}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}
