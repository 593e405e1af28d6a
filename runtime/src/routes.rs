//! HTTP routes as Spin matches them, and the `spin-*` headers a matched request carries.
//!
//! A route is a path of literal and `:name` segments, optionally ending in the wildcard `/...`.
//! The best of several matching routes is decided segment by segment from the left: a literal
//! beats a parameter, which beats the wildcard; an exact route beats a wildcard at the same point
//! (so `/api/users` beats `/api/...`, which beats `/...`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A parsed route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    /// The route as written in the manifest, before the base is applied.
    raw: String,
    /// The base path it is served under (`/` unless the manifest sets one).
    base: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

/// A request path matched against a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// What the wildcard captured, with its leading (and any trailing) slash; empty when the
    /// route has no wildcard or it captured nothing.
    pub path_info: String,
    /// `:name` parameters and their values.
    pub params: Vec<(String, String)>,
}

impl RoutePattern {
    /// Parses `route` as served under `/`.
    pub fn parse(route: &str) -> Result<Self, String> {
        Self::parse_with_base("/", route)
    }

    /// Parses `route` as served under `base`.
    pub fn parse_with_base(base: &str, route: &str) -> Result<Self, String> {
        if route.contains(['?', '#']) {
            return Err(format!(
                "route `{route}` may not contain a query or fragment"
            ));
        }
        let joined = format!("{}{}", sanitize(base), sanitize(route));
        let (path, wildcard) = match joined
            .strip_suffix("/...")
            .or_else(|| joined.strip_suffix("/*"))
        {
            Some(prefix) => (prefix.to_owned(), true),
            None => (joined.clone(), false),
        };
        let mut segments = Vec::new();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            if segment == "..." || segment.contains('*') {
                return Err(format!(
                    "route `{route}`: a wildcard may only end the route (`/...`)"
                ));
            }
            segments.push(match segment.strip_prefix(':') {
                Some("") => return Err(format!("route `{route}`: a `:` parameter needs a name")),
                Some(name) => Segment::Param(name.to_owned()),
                None => Segment::Literal(segment.to_owned()),
            });
        }
        Ok(RoutePattern {
            raw: sanitize(route),
            base: sanitize(base),
            segments,
            wildcard,
        })
    }

    /// Matches a request path (without its query).
    pub fn matches(&self, path: &str) -> Option<RouteMatch> {
        let trimmed = path
            .strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path);
        let parts: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() < self.segments.len()
            || (!self.wildcard && parts.len() != self.segments.len())
        {
            return None;
        }
        let mut params = Vec::new();
        for (segment, part) in self.segments.iter().zip(&parts) {
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), (*part).to_owned())),
            }
        }
        let path_info = if self.wildcard {
            // Skip the matched segments in the original path, keeping what follows verbatim.
            let mut rest = path;
            for _ in 0..self.segments.len() {
                rest = rest.trim_start_matches('/');
                rest = &rest[rest.find('/').unwrap_or(rest.len())..];
            }
            rest.to_owned()
        } else {
            String::new()
        };
        Some(RouteMatch { path_info, params })
    }

    /// Orders matching routes: the greater one is the better match.
    fn rank(&self) -> Vec<u8> {
        let mut rank: Vec<u8> = self
            .segments
            .iter()
            .map(|segment| match segment {
                Segment::Literal(_) => 3,
                Segment::Param(_) => 2,
            })
            .collect();
        rank.push(if self.wildcard { 0 } else { 1 });
        rank
    }

    /// The route as written, before the base (`spin-raw-component-route`).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The raw route without its wildcard (`spin-component-route`).
    pub fn component_route(&self) -> &str {
        self.raw
            .strip_suffix("/...")
            .or_else(|| self.raw.strip_suffix("/*"))
            .unwrap_or(&self.raw)
    }

    /// The base path (`spin-base-path`).
    pub fn base(&self) -> &str {
        if self.base.is_empty() {
            "/"
        } else {
            &self.base
        }
    }
}

impl fmt::Display for RoutePattern {
    /// The route with its base (`spin-matched-route`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.base, self.raw)
    }
}

/// A leading `/`, no trailing one (`/` itself becomes empty).
fn sanitize(path: &str) -> String {
    let with_slash = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    with_slash
        .strip_suffix('/')
        .unwrap_or(&with_slash)
        .to_owned()
}

/// The best route for `path` among `routes`, with what it matched.
pub fn best<'a, T>(
    routes: &'a [(RoutePattern, T)],
    path: &str,
) -> Option<(&'a RoutePattern, &'a T, RouteMatch)> {
    routes
        .iter()
        .filter_map(|(pattern, target)| pattern.matches(path).map(|m| (pattern, target, m)))
        .max_by(|a, b| a.0.rank().cmp(&b.0.rank()))
}

/// The `spin-*` headers of a request to `full_url` from `client` matched by `route`.
pub fn spin_headers(
    route: &RoutePattern,
    matched: &RouteMatch,
    full_url: &str,
    client: &str,
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("spin-full-url".to_owned(), full_url.to_owned()),
        ("spin-path-info".to_owned(), matched.path_info.clone()),
        ("spin-matched-route".to_owned(), route.to_string()),
        (
            "spin-raw-component-route".to_owned(),
            route.raw().to_owned(),
        ),
        (
            "spin-component-route".to_owned(),
            route.component_route().to_owned(),
        ),
        ("spin-base-path".to_owned(), route.base().to_owned()),
        ("spin-client-addr".to_owned(), client.to_owned()),
    ];
    for (name, value) in &matched.params {
        headers.push((
            format!(
                "spin-path-match-{}",
                name.to_ascii_lowercase().replace('_', "-")
            ),
            value.clone(),
        ));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(list: &[&str]) -> Vec<(RoutePattern, String)> {
        list.iter()
            .map(|r| (RoutePattern::parse(r).unwrap(), (*r).to_owned()))
            .collect()
    }

    fn winner(table: &[(RoutePattern, String)], path: &str) -> Option<String> {
        best(table, path).map(|(_, target, _)| target.clone())
    }

    #[test]
    fn the_most_specific_route_wins_whatever_the_order() {
        let table = routes(&[
            "/...",
            "/api/...",
            "/api/users",
            "/api/users/:id",
            "/api/users/...",
            "/static/...",
        ]);
        assert_eq!(winner(&table, "/").as_deref(), Some("/..."));
        assert_eq!(winner(&table, "/other/x").as_deref(), Some("/..."));
        assert_eq!(winner(&table, "/api").as_deref(), Some("/api/..."));
        assert_eq!(winner(&table, "/api/users").as_deref(), Some("/api/users"));
        assert_eq!(winner(&table, "/api/users/").as_deref(), Some("/api/users"));
        assert_eq!(
            winner(&table, "/api/users/7").as_deref(),
            Some("/api/users/:id")
        );
        assert_eq!(
            winner(&table, "/api/users/7/edit").as_deref(),
            Some("/api/users/...")
        );
        let exact_only = routes(&["/a", "/b/:x"]);
        assert_eq!(winner(&exact_only, "/c"), None);
        assert_eq!(winner(&exact_only, "/a/b"), None);
        assert_eq!(winner(&exact_only, "/b"), None);
    }

    #[test]
    fn headers_follow_spins_worked_examples() {
        let table = routes(&["/api/...", "/users/:user_id"]);
        let (route, _, matched) = best(&table, "/api/users/1").unwrap();
        let headers = spin_headers(
            route,
            &matched,
            "http://localhost:3000/api/users/1?x=y",
            "127.0.0.1:5000",
        );
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("spin-full-url"),
            Some("http://localhost:3000/api/users/1?x=y")
        );
        assert_eq!(get("spin-path-info"), Some("/users/1"));
        assert_eq!(get("spin-matched-route"), Some("/api/..."));
        assert_eq!(get("spin-raw-component-route"), Some("/api/..."));
        assert_eq!(get("spin-component-route"), Some("/api"));
        assert_eq!(get("spin-base-path"), Some("/"));
        assert_eq!(get("spin-client-addr"), Some("127.0.0.1:5000"));

        let (route, _, matched) = best(&table, "/users/42").unwrap();
        let headers = spin_headers(route, &matched, "http://h/users/42", "c");
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("spin-path-info"), Some(""));
        assert_eq!(get("spin-component-route"), Some("/users/:user_id"));
        assert_eq!(get("spin-path-match-user-id"), Some("42"));
    }

    #[test]
    fn path_info_keeps_what_the_wildcard_captured() {
        let route = RoutePattern::parse("/foo/...").unwrap();
        let info = |path: &str| route.matches(path).map(|m| m.path_info);
        assert_eq!(info("/foo").as_deref(), Some(""));
        assert_eq!(info("/foo/").as_deref(), Some("/"));
        assert_eq!(info("/foo/bar").as_deref(), Some("/bar"));
        assert_eq!(info("/foo/bar/").as_deref(), Some("/bar/"));
        assert_eq!(info("/foobar"), None);
        let based = RoutePattern::parse_with_base("/shop", "/cart/...").unwrap();
        assert_eq!(based.to_string(), "/shop/cart/...");
        assert_eq!(based.base(), "/shop");
        assert!(based.matches("/shop/cart/1").is_some());
        assert!(RoutePattern::parse("/a/.../b").is_err());
    }
}
