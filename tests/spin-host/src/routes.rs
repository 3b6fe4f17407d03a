//! HTTP route matching as Spin does it: exact routes (`/health`) and wildcard routes
//! (`/admin/...`, which matches `/admin` and everything below it); the longest match wins, and
//! an exact route beats a wildcard of the same length.

use anyhow::{bail, Result};

/// One route pattern from the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The route as written (`/v1/chat/...`), for the `spin-matched-route` header.
    pub raw: String,
    /// The path without the wildcard suffix (`/v1/chat`); empty for `/...`.
    pub prefix: String,
    pub wildcard: bool,
}

impl Route {
    pub fn parse(raw: &str) -> Result<Self> {
        if !raw.starts_with('/') {
            bail!("route {raw:?} must start with '/'");
        }
        let (prefix, wildcard) = match raw.strip_suffix("/...") {
            Some(prefix) => (prefix.to_owned(), true),
            None if raw.contains("...") => bail!("route {raw:?}: '...' may only end a route"),
            None => (raw.to_owned(), false),
        };
        // Spin treats `/foo/` and `/foo` as the same route.
        let prefix = if !wildcard && prefix.len() > 1 { prefix.trim_end_matches('/').to_owned() } else { prefix };
        Ok(Self { raw: raw.to_owned(), prefix, wildcard })
    }

    /// The path info (what follows the matched prefix) when `path` matches.
    pub fn matches<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.wildcard {
            let rest = path.strip_prefix(self.prefix.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some(rest)
        } else {
            let trimmed = if path.len() > 1 { path.trim_end_matches('/') } else { path };
            (trimmed == self.prefix).then_some("")
        }
    }
}

/// All public routes, each with the component it leads to.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<(Route, String)>,
}

/// The result of routing one path.
#[derive(Debug, PartialEq, Eq)]
pub struct Matched<'r> {
    pub component: &'r str,
    pub route: &'r Route,
    pub path_info: String,
}

impl Router {
    pub fn add(&mut self, route: Route, component: String) {
        self.routes.push((route, component));
    }

    pub fn route(&self, path: &str) -> Option<Matched<'_>> {
        self.routes
            .iter()
            .filter_map(|(route, component)| route.matches(path).map(|info| (route, component, info)))
            .max_by_key(|(route, _, _)| (route.prefix.len(), !route.wildcard))
            .map(|(route, component, info)| Matched { component, route, path_info: info.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Result<Router> {
        let mut router = Router::default();
        for (route, component) in [
            ("/...", "gateway"),
            ("/health", "admin"),
            ("/admin/...", "admin"),
            ("/v1/chat", "chat"),
            ("/v1/chat/...", "chat"),
            ("/v1/chat/special", "special"),
        ] {
            router.add(Route::parse(route)?, component.to_owned());
        }
        Ok(router)
    }

    fn component(router: &Router, path: &str) -> Option<String> {
        router.route(path).map(|m| m.component.to_owned())
    }

    #[test]
    fn longest_match_wins_and_wildcards_cover_their_prefix() -> Result<()> {
        let r = router()?;
        assert_eq!(component(&r, "/").as_deref(), Some("gateway"));
        assert_eq!(component(&r, "/v2/anything").as_deref(), Some("gateway"));
        assert_eq!(component(&r, "/health").as_deref(), Some("admin"));
        assert_eq!(component(&r, "/healthz").as_deref(), Some("gateway"));
        assert_eq!(component(&r, "/admin").as_deref(), Some("admin"));
        assert_eq!(component(&r, "/admin/keys/1").as_deref(), Some("admin"));
        assert_eq!(component(&r, "/administrator").as_deref(), Some("gateway"));
        assert_eq!(component(&r, "/v1/chat").as_deref(), Some("chat"));
        assert_eq!(component(&r, "/v1/chat/completions").as_deref(), Some("chat"));
        assert_eq!(component(&r, "/v1/chat/special").as_deref(), Some("special"));
        Ok(())
    }

    #[test]
    fn path_info_is_what_follows_the_wildcard_prefix() -> Result<()> {
        let r = router()?;
        let m = r.route("/admin/keys/1").ok_or_else(|| anyhow::anyhow!("no match"))?;
        assert_eq!(m.path_info, "/keys/1");
        assert_eq!(m.route.raw, "/admin/...");
        let m = r.route("/health").ok_or_else(|| anyhow::anyhow!("no match"))?;
        assert_eq!(m.path_info, "");
        Ok(())
    }

    #[test]
    fn without_a_catch_all_unknown_paths_match_nothing() -> Result<()> {
        let mut r = Router::default();
        r.add(Route::parse("/only")?, "x".to_owned());
        assert_eq!(r.route("/other"), None);
        assert!(Route::parse("no-slash").is_err());
        assert!(Route::parse("/a/.../b").is_err());
        Ok(())
    }
}
