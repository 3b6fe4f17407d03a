//! `allowed_outbound_hosts`: which URLs a component may call, in Spin's pattern syntax.
//!
//! A pattern is `scheme://host[:port]`. The scheme is a name or `*`; the host is a name, an
//! address, `*`, or `*.suffix` (any subdomain); the port is a number, a range `a..b` (end
//! exclusive), `*`, or absent (the scheme's default port). `http://*.spin.internal` allows
//! service chaining to every component.

use anyhow::{bail, Context as _, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Scheme {
    Any,
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`: any subdomain of `example.com` (stored with the leading dot).
    Subdomain(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ports {
    Default,
    Any,
    One(u16),
    /// `a..b`: from `a` up to but not including `b`.
    Range(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    scheme: Scheme,
    host: HostPattern,
    ports: Ports,
}

/// A component's outbound rules.
#[derive(Debug, Clone, Default)]
pub struct OutboundRules {
    patterns: Vec<Pattern>,
}

impl OutboundRules {
    /// Parses patterns; empty entries (a template whose variable is empty) are skipped.
    pub fn parse(patterns: &[String]) -> Result<Self> {
        let patterns = patterns
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .map(|p| parse_pattern(p).with_context(|| format!("invalid outbound host {p:?}")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { patterns })
    }

    /// Whether a request to `uri` is allowed.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let Some(scheme) = uri.scheme_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let Some(host) = uri.host().map(str::to_ascii_lowercase) else {
            return false;
        };
        let default_port = match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        let Some(port) = uri.port_u16().or(default_port) else {
            return false;
        };
        self.patterns.iter().any(|p| {
            let scheme_ok = match &p.scheme {
                Scheme::Any => true,
                Scheme::Named(s) => *s == scheme,
            };
            let host_ok = match &p.host {
                HostPattern::Any => true,
                HostPattern::Subdomain(suffix) => host.ends_with(suffix.as_str()),
                HostPattern::Exact(h) => *h == host,
            };
            let port_ok = match p.ports {
                Ports::Any => true,
                Ports::Default => Some(port) == default_port,
                Ports::One(p) => p == port,
                Ports::Range(start, end) => (start..end).contains(&port),
            };
            scheme_ok && host_ok && port_ok
        })
    }
}

fn parse_pattern(raw: &str) -> Result<Pattern> {
    let Some((scheme, rest)) = raw.split_once("://") else {
        bail!("expected scheme://host[:port]");
    };
    let scheme = match scheme {
        "*" => Scheme::Any,
        s if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) => {
            Scheme::Named(s.to_ascii_lowercase())
        }
        _ => bail!("invalid scheme"),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        bail!("a path is not allowed");
    }
    // An IPv6 literal keeps its brackets, as `http::Uri::host` does.
    let (host, port) = if let Some(end) = rest.find(']') {
        let (host, after) = rest.split_at(end + 1);
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let host = host.to_ascii_lowercase();
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(suffix) = host.strip_prefix("*.") {
        HostPattern::Subdomain(format!(".{suffix}"))
    } else if host.is_empty() || host.contains('*') {
        bail!("invalid host");
    } else {
        HostPattern::Exact(host)
    };
    let ports = match port {
        None => Ports::Default,
        Some("*") => Ports::Any,
        Some(range) if range.contains("..") => {
            let (start, end) = range.split_once("..").unwrap_or_default();
            Ports::Range(start.parse()?, end.parse()?)
        }
        Some(port) => Ports::One(port.parse()?),
    };
    Ok(Pattern { scheme, host, ports })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(patterns: &[&str]) -> Result<OutboundRules> {
        OutboundRules::parse(&patterns.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>())
    }

    fn allows(rules: &OutboundRules, url: &str) -> bool {
        url.parse().map(|uri| rules.allows(&uri)).unwrap_or(false)
    }

    #[test]
    fn exact_hosts_use_the_default_port_unless_given() -> Result<()> {
        let r = rules(&["https://api.openai.com", "http://localhost:3001"])?;
        assert!(allows(&r, "https://api.openai.com/v1/chat/completions"));
        assert!(allows(&r, "https://API.openai.com:443/v1"));
        assert!(!allows(&r, "http://api.openai.com/v1"));
        assert!(!allows(&r, "https://api.openai.com:8443/v1"));
        assert!(!allows(&r, "https://evil.com/?api.openai.com"));
        assert!(allows(&r, "http://localhost:3001/"));
        assert!(!allows(&r, "http://localhost:3002/"));
        Ok(())
    }

    #[test]
    fn wildcards_cover_ports_subdomains_and_schemes() -> Result<()> {
        let r = rules(&["http://127.0.0.1:*", "http://*.spin.internal", "*://example.com:8000..8002"])?;
        assert!(allows(&r, "http://127.0.0.1:45678/x"));
        assert!(!allows(&r, "https://127.0.0.1:45678/x"));
        assert!(allows(&r, "http://chat.spin.internal/v1/chat"));
        assert!(!allows(&r, "http://spin.internal/"));
        assert!(!allows(&r, "http://chat.spin.internal.evil.com/"));
        assert!(allows(&r, "https://example.com:8001/"));
        assert!(!allows(&r, "https://example.com:8002/"));
        Ok(())
    }

    #[test]
    fn nothing_is_allowed_by_default_and_bad_patterns_are_errors() -> Result<()> {
        let r = rules(&[])?;
        assert!(!allows(&r, "http://127.0.0.1:80/"));
        assert!(rules(&["api.openai.com"]).is_err());
        assert!(rules(&["https://api.openai.com/v1"]).is_err());
        assert!(rules(&["https://a*b.com"]).is_err());
        assert!(rules(&["https://a.com:x"]).is_err());
        assert!(rules(&["", "  "])?.patterns.is_empty());
        Ok(())
    }
}
