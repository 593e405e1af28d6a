//! `allowed_outbound_hosts`, as Spin reads it: `scheme://host[:port]`.
//!
//! - scheme: a name or `*`; host: a name, `*`, `*.suffix`, an IP or a CIDR range; port: a number,
//!   a range `a..b` (end excluded) or `*`, defaulting by scheme (http 80, https 443, postgres
//!   5432, mysql 3306, redis 6379, mqtt 1883; other schemes must give one).
//! - `http://self` (or `https://self`) lets a component call its own app by route, at
//!   `http://self.alt/path`; `http://*.spin.internal` (or one `component.spin.internal`) lets it
//!   call a component directly (Spin's local service chaining). Both stay inside the process.
//! - A request that no entry allows is refused with wasi:http's `HTTP-request-denied`.
//! - Sockets (`wasi:sockets`): `tcp://host:port` lets a component connect a TCP socket there,
//!   `udp://host:port` send datagrams there; the host is an IP, a range, `*`, or a name that
//!   resolves to the address. A refused connect gets wasi:sockets' `access-denied`.

use std::{
    net::{IpAddr, SocketAddr},
    ops::Range,
};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Any,
    /// `*.example.com` matches `a.example.com` and `a.b.example.com`, not `example.com`.
    Suffix(String),
    Name(String),
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Port {
    Any,
    Range(Range<u16>),
}

/// One entry of `allowed_outbound_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// `None` for `*`.
    scheme: Option<String>,
    host: Host,
    port: Port,
}

fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" => 80,
        "https" => 443,
        "postgres" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "mqtt" => 1883,
        _ => return None,
    })
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| format!("`{entry}` does not contain a scheme (like `https://`)"))?;
        if scheme != "*" && (scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(format!("`{entry}`: the scheme must be a name or `*`"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        // A CIDR range has a `/`: `10.0.0.0/8:80`, `ff00::/8:80`.
        let (host_text, port_text) = split_port(rest);
        let host = parse_host(host_text).map_err(|err| format!("`{entry}`: {err}"))?;
        let port = match port_text {
            Some("*") => Port::Any,
            Some(text) => match text.split_once("..") {
                Some((start, end)) => Port::Range(number(start, entry)?..number(end, entry)?),
                None => {
                    let port = number(text, entry)?;
                    Port::Range(port..port.saturating_add(1))
                }
            },
            None => {
                let port = default_port(scheme).ok_or_else(|| {
                    format!("`{entry}` must give a port: scheme `{scheme}` has no default")
                })?;
                Port::Range(port..port + 1)
            }
        };
        Ok(AllowedHost {
            scheme: (scheme != "*").then(|| scheme.to_owned()),
            host,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this entry.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == scheme);
        let port_ok = match &self.port {
            Port::Any => true,
            Port::Range(range) => range.contains(&port),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let host_ok = match &self.host {
            Host::Any => true,
            Host::Suffix(suffix) => host.ends_with(suffix.as_str()) && host.len() > suffix.len(),
            Host::Name(name) => &host == name,
            Host::Cidr(network, bits) => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_network(ip, *network, *bits)),
        };
        scheme_ok && port_ok && host_ok
    }
}

/// Splits `host[:port]`, minding IPv6 brackets and CIDR suffixes.
fn split_port(rest: &str) -> (&str, Option<&str>) {
    if let Some((host, after)) = rest
        .strip_prefix('[')
        .and_then(|inner| inner.split_once(']'))
    {
        return (host, after.strip_prefix(':'));
    }
    // An IPv6 CIDR (`ff00::/8:80`): the port follows the prefix length.
    if let Some((network, after)) = rest.split_once('/') {
        return match after.split_once(':') {
            Some((bits, port)) => (&rest[..network.len() + 1 + bits.len()], Some(port)),
            None => (rest, None),
        };
    }
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (rest, None),
    }
}

fn parse_host(text: &str) -> Result<Host, String> {
    if text == "*" {
        return Ok(Host::Any);
    }
    if let Some((network, bits)) = text.split_once('/') {
        let network: IpAddr = network.parse().map_err(|_| {
            format!("`{text}`: only an IP range may have a `/`, a host may not have a path")
        })?;
        let bits: u8 = bits
            .parse()
            .map_err(|_| format!("`{text}` has a bad prefix length"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(format!("`{text}` has a prefix longer than {max}"));
        }
        return Ok(Host::Cidr(network, bits));
    }
    if let Some(suffix) = text.strip_prefix("*.") {
        if suffix.contains('*') || suffix.is_empty() {
            return Err(format!("`{text}`: `*` may only start a host"));
        }
        return Ok(Host::Suffix(format!(".{}", suffix.to_ascii_lowercase())));
    }
    if text.contains('*') {
        return Err(format!("`{text}`: `*` may only start a host"));
    }
    if text.is_empty() {
        return Err("the host is empty".to_owned());
    }
    match text.parse::<IpAddr>() {
        Ok(ip) => Ok(Host::Cidr(ip, if ip.is_ipv4() { 32 } else { 128 })),
        Err(_) => Ok(Host::Name(text.to_ascii_lowercase())),
    }
}

fn number(text: &str, entry: &str) -> Result<u16, String> {
    text.parse()
        .map_err(|_| format!("`{entry}`: `{text}` is not a port"))
}

fn in_network(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// A component's whole allow-list.
#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<AllowedHost>);

impl AllowList {
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| AllowedHost::parse(entry))
            .collect::<Result<_, _>>()
            .map(AllowList)
    }

    /// Whether the component may call its own app by route (an `http://self` entry).
    pub fn allows_self(&self) -> bool {
        self.0
            .iter()
            .any(|entry| matches!(&entry.host, Host::Name(name) if name == "self"))
    }

    /// Whether a request to `scheme://host[:port]` may go out; a missing port is the scheme's
    /// default.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let Some(port) = port.or_else(|| default_port(scheme)) else {
            return false;
        };
        self.0.iter().any(|entry| entry.allows(scheme, host, port))
    }

    /// Whether any entry may be for `scheme` (`tcp`, `udp`): the component gets sockets at all.
    pub fn mentions(&self, scheme: &str) -> bool {
        self.0
            .iter()
            .any(|entry| entry.scheme.as_deref().is_none_or(|s| s == scheme))
    }

    /// Whether a socket may reach `address` over `scheme` (`tcp` or `udp`): an entry naming its
    /// IP or a range holding it, or, when `resolve`, a host name that resolves to it now (`*.x`
    /// entries never match an address). IPv4 addresses written as IPv6 (`::ffff:a.b.c.d`) are
    /// checked as the IPv4 address they are.
    pub async fn allows_address(&self, scheme: &str, address: SocketAddr, resolve: bool) -> bool {
        let ip = address.ip().to_canonical();
        let port = address.port();
        for entry in &self.0 {
            let scheme_ok = entry.scheme.as_deref().is_none_or(|s| s == scheme);
            let port_ok = match &entry.port {
                Port::Any => true,
                Port::Range(range) => range.contains(&port),
            };
            if !(scheme_ok && port_ok) {
                continue;
            }
            match &entry.host {
                Host::Any => return true,
                Host::Cidr(network, bits) if in_network(ip, *network, *bits) => return true,
                Host::Name(name) if resolve => {
                    let lookup = tokio::net::lookup_host((name.as_str(), port));
                    if let Ok(Ok(mut found)) =
                        tokio::time::timeout(std::time::Duration::from_secs(2), lookup).await
                        && found.any(|f| f.ip().to_canonical() == ip)
                    {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }
}

/// `address` with its credentials masked, for logs: the password of a URL's user info
/// (`redis://user:secret@host` → `redis://user:***@host`) and any `password=` of a key-value
/// connection string.
pub fn redact(address: &str) -> String {
    if let Some((scheme, rest)) = address.split_once("://") {
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            let user = rest[..at].split(':').next().unwrap_or_default();
            let masked = if rest[..at].contains(':') {
                format!("{user}:***")
            } else {
                "***".to_owned()
            };
            return format!("{scheme}://{masked}{}", redact_parameters(&rest[at..]));
        }
        return format!("{scheme}://{}", redact_parameters(rest));
    }
    redact_parameters(address)
}

/// `password=VALUE` (space- or `&`-separated, as in key-value strings and URL queries) masked.
fn redact_parameters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.to_ascii_lowercase().find("password=") {
        let value_start = found + "password=".len();
        out.push_str(&rest[..value_start]);
        out.push_str("***");
        let value = &rest[value_start..];
        let end = if let Some(quoted) = value.strip_prefix('\'') {
            quoted.find('\'').map_or(value.len(), |i| i + 2)
        } else {
            value.find([' ', '&']).unwrap_or(value.len())
        };
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn entries_allow_what_spin_allows() {
        let allowed = list(&[
            "https://example.com",
            "http://localhost:3000",
            "*://*.acme.dev:*",
            "http://10.0.0.0/8:8080..8090",
        ]);
        assert!(allowed.allows("https", "example.com", None));
        assert!(allowed.allows("https", "EXAMPLE.com", Some(443)));
        assert!(
            !allowed.allows("http", "example.com", None),
            "scheme must match"
        );
        assert!(
            !allowed.allows("https", "example.com", Some(8443)),
            "default port only"
        );
        assert!(!allowed.allows("https", "api.example.com", None));
        assert!(allowed.allows("http", "localhost", Some(3000)));
        assert!(!allowed.allows("http", "localhost", Some(3001)));
        assert!(allowed.allows("redis", "cache.acme.dev", Some(1)));
        assert!(allowed.allows("https", "a.b.acme.dev", None));
        assert!(
            !allowed.allows("https", "acme.dev", None),
            "a wildcard needs a subdomain"
        );
        assert!(allowed.allows("http", "10.1.2.3", Some(8089)));
        assert!(
            !allowed.allows("http", "10.1.2.3", Some(8090)),
            "range end is excluded"
        );
        assert!(!allowed.allows("http", "11.1.2.3", Some(8085)));
        assert!(list(&["*://*:*"]).allows("ftp", "anything", Some(21)));
        assert!(list(&["http://[::1]:8001"]).allows("http", "[::1]", Some(8001)));
        assert!(!AllowList::default().allows("https", "example.com", None));
    }

    #[test]
    fn credentials_are_masked() {
        assert_eq!(
            redact("redis://user:s3cret@cache:6379/0"),
            "redis://user:***@cache:6379/0"
        );
        assert_eq!(redact("redis://:s3cret@cache"), "redis://:***@cache");
        assert_eq!(redact("redis://token@cache"), "redis://***@cache");
        assert_eq!(redact("redis://cache:6379"), "redis://cache:6379");
        assert_eq!(
            redact("postgres://app@db/x?password=s3cret&sslmode=disable"),
            "postgres://***@db/x?password=***&sslmode=disable"
        );
        assert_eq!(
            redact("host=db user=app password='a b' dbname=x"),
            "host=db user=app password=*** dbname=x"
        );
        assert!(!redact("host=db PASSWORD=hunter2").contains("hunter2"));
    }

    #[test]
    fn self_requests_need_a_self_entry() {
        assert!(list(&["http://self"]).allows_self());
        assert!(list(&["https://self"]).allows_self());
        assert!(!list(&["*://*:*", "http://self.example.com"]).allows_self());
    }

    #[test]
    fn bad_entries_are_refused_with_a_reason() {
        for (entry, reason) in [
            ("example.com", "scheme"),
            ("*://example.com", "port"),
            ("https://exa*mple.com", "`*` may only start"),
            ("https://example.com:http", "not a port"),
            ("https://example.com/path", "path"),
        ] {
            let err = AllowedHost::parse(entry).unwrap_err();
            assert!(err.contains(reason), "{entry}: {err}");
        }
    }

    #[tokio::test]
    async fn sockets_are_allowed_by_address_range_port_and_name() {
        let list = AllowList::parse(&[
            "tcp://127.0.0.1:7000".to_owned(),
            "tcp://10.0.0.0/8:80..90".to_owned(),
            "udp://localhost:53".to_owned(),
        ])
        .unwrap();
        let at = |text: &str| text.parse::<SocketAddr>().unwrap();
        let allows = |scheme: &'static str, address: &str| {
            let address = at(address);
            let list = list.clone();
            async move { list.allows_address(scheme, address, true).await }
        };
        assert!(allows("tcp", "127.0.0.1:7000").await);
        assert!(allows("tcp", "[::ffff:127.0.0.1]:7000").await);
        assert!(!allows("tcp", "127.0.0.1:7001").await);
        assert!(!allows("udp", "127.0.0.1:7000").await);
        assert!(allows("tcp", "10.2.3.4:85").await);
        assert!(allows("tcp", "[::ffff:10.2.3.4]:85").await);
        assert!(!allows("tcp", "10.2.3.4:90").await);
        assert!(!allows("tcp", "11.0.0.1:85").await);
        assert!(allows("udp", "127.0.0.1:53").await);
        assert!(!list.allows_address("udp", at("127.0.0.1:53"), false).await);
        let suffix = AllowList::parse(&["tcp://*.1:*".to_owned()]).unwrap();
        assert!(!suffix.allows_address("tcp", at("10.0.0.1:80"), true).await);
        assert!(list.mentions("tcp") && list.mentions("udp"));
        assert!(
            !AllowList::parse(&["https://x.example".to_owned()])
                .unwrap()
                .mentions("tcp")
        );
    }
}
