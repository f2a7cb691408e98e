//! Which hosts a client talks to: the control-panel host, which issues tokens, and the API
//! base, which serves every other operation.

use std::borrow::Cow;

use reqwest::Url;

use crate::Error;

/// The two base URLs of a Comm100 deployment.
///
/// Built from a control-panel domain with [`Endpoints::from_portal`], or from explicit URLs with
/// [`Endpoints::custom`]. Both constructors refuse plain `http` to a host other than loopback,
/// so a value of this type never sends a password or a token in clear text by accident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    portal: Url,
    api: Url,
}

/// Whether [`Endpoints::custom`] may use plain `http` to a host other than loopback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpPolicy {
    /// `https` everywhere, except for loopback hosts (the sandbox, tests).
    #[default]
    HttpsUnlessLoopback,
    /// Allow plain `http` to any host. Credentials and tokens then cross the network in clear
    /// text; use it only for a trusted proxy or network.
    DangerAllowHttp,
}

impl Endpoints {
    /// Derives both hosts from a control-panel domain: `portal{N}.comm100.io` (also as a URL, or
    /// with a trailing slash) selects `https://api{N}.comm100.io/api/v3` for operations and
    /// `https://portal{N}.comm100.io` for the token.
    ///
    /// ```
    /// let endpoints = comm100::Endpoints::from_portal("https://portal5.comm100.io/")?;
    /// assert_eq!(endpoints.api_url(), "https://api5.comm100.io/api/v3");
    /// assert_eq!(endpoints.portal_url(), "https://portal5.comm100.io");
    /// # Ok::<(), comm100::Error>(())
    /// ```
    pub fn from_portal(domain: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidDomain {
            given: shown_url(domain).into_owned(),
        };
        let trimmed = domain.trim();
        let host = trimmed
            .strip_prefix("https://")
            .unwrap_or(trimmed)
            .trim_end_matches('/')
            .to_ascii_lowercase();
        let n = host
            .strip_prefix("portal")
            .and_then(|rest| rest.strip_suffix(".comm100.io"))
            .ok_or_else(invalid)?;
        if n.is_empty() || n.len() > 3 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let portal = Url::parse(&format!("https://portal{n}.comm100.io")).map_err(|_| invalid())?;
        let api =
            Url::parse(&format!("https://api{n}.comm100.io/api/v3")).map_err(|_| invalid())?;
        Ok(Self { portal, api })
    }

    /// Uses explicit base URLs: `portal` serves the token operation, `api` every other one
    /// (for example `http://127.0.0.1:8089` and `http://127.0.0.1:8089/api/v3` for the sandbox).
    pub fn custom(portal: &str, api: &str, policy: HttpPolicy) -> Result<Self, Error> {
        Ok(Self {
            portal: checked_url("portal URL", portal, policy)?,
            api: checked_url("API URL", api, policy)?,
        })
    }

    /// The control-panel base URL, without a trailing slash.
    pub fn portal_url(&self) -> &str {
        self.portal.as_str().trim_end_matches('/')
    }

    /// The API base URL, without a trailing slash.
    pub fn api_url(&self) -> &str {
        self.api.as_str().trim_end_matches('/')
    }

    /// The API base URL, under which every raw path must stay.
    pub(crate) fn api_base(&self) -> &Url {
        &self.api
    }

    /// The API host's origin: the only origin that ever receives the token.
    pub(crate) fn api_origin(&self) -> reqwest::Url {
        self.api.clone()
    }
}

fn checked_url(what: &'static str, raw: &str, policy: HttpPolicy) -> Result<Url, Error> {
    let invalid = |reason: String| Error::InvalidUrl {
        what,
        url: shown_url(raw).into_owned(),
        reason,
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(e.to_string()))?;
    // Credentials in a URL would go out with every request and end up in logs and errors;
    // the builder takes them instead.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "it must not contain a user name or password (give credentials to the builder)".into(),
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if policy == HttpPolicy::DangerAllowHttp || is_loopback(&url) => {}
        "http" => {
            return Err(Error::InsecureUrl {
                what,
                url: shown_url(raw).into_owned(),
            })
        }
        // Named only when it was written as one: in `agent:password@host`, the parser takes
        // the user name for a scheme.
        other if raw.trim().starts_with(&format!("{other}://")) => {
            return Err(invalid(format!("the scheme must be https, not {other}")))
        }
        _ => return Err(invalid("the scheme must be https".into())),
    }
    if url.host().is_none() {
        return Err(invalid("it has no host".into()));
    }
    Ok(url)
}

/// A URL as it was given, to show in an error or `Debug`, with any user name and password
/// replaced by `***`: `https://***@host/path`. A URL that does not parse as `http` or `https`
/// loses everything from after its `://` (or its start) to its last `@`, where a password would
/// be.
pub(crate) fn shown_url(raw: &str) -> Cow<'_, str> {
    let Some(at) = raw.rfind('@') else {
        return Cow::Borrowed(raw);
    };
    match Url::parse(raw.trim()) {
        Ok(mut url) if matches!(url.scheme(), "http" | "https") => {
            if url.username().is_empty() && url.password().is_none() {
                return Cow::Borrowed(raw);
            }
            // Both succeed for a URL with a host, which an http(s) URL has once parsed.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            match url.as_str().split_once("://") {
                Some((scheme, rest)) => Cow::Owned(format!("{scheme}://***@{rest}")),
                None => Cow::Borrowed("***"),
            }
        }
        _ => {
            let start = raw[..at].find("://").map_or(0, |i| i + 3);
            Cow::Owned(format!("{}***{}", &raw[..start], &raw[at..]))
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether two URLs share scheme, host and port.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    // A parsed URL's text up to its path is canonical (the scheme and host in lower case, a
    // default port left out), so equal origins have equal text there, which is cheaper to
    // compare than the parts. Userinfo, which this crate refuses in its URLs, counts too: a
    // URL that carries some is never the same origin as one without.
    a[..url::Position::BeforePath] == b[..url::Position::BeforePath]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_compares_scheme_host_and_port_whatever_the_spelling() {
        let url = |s: &str| Url::parse(s).unwrap();
        let api = url("https://api1.comm100.io/api/v3");
        for same in [
            "https://api1.comm100.io/api/v3/livechat/customerSegments",
            "https://API1.Comm100.io:443/other?x=1",
            "https://api1.comm100.io",
        ] {
            assert!(same_origin(&api, &url(same)), "{same}");
        }
        for other in [
            "http://api1.comm100.io/api/v3",
            "https://api1.comm100.io:8443/api/v3",
            "https://api1.comm100.io.evil.example/api/v3",
            "https://evil.example/api1.comm100.io/api/v3",
            "https://user@api1.comm100.io/api/v3",
        ] {
            assert!(!same_origin(&api, &url(other)), "{other}");
        }
    }

    #[test]
    fn userinfo_is_refused_and_never_shown() {
        for (portal, shown) in [
            (
                "https://agent:hunter2@portal.example",
                "https://***@portal.example/",
            ),
            (
                "https://agent@portal.example/x?y#z",
                "https://***@portal.example/x?y#z",
            ),
            (
                "https://:hunter2@portal.example",
                "https://***@portal.example/",
            ),
            (
                "http://agent:hunter2@127.0.0.1:1",
                "http://***@127.0.0.1:1/",
            ),
            // Not parsed: everything up to the last `@` goes.
            (
                "https://agent:hun/ter2@portal.example",
                "https://***@portal.example",
            ),
            ("https://agent:hunter2@[::1", "https://***@[::1"),
            ("agent:hunter2@portal.example", "***@portal.example"),
            (
                "ftp://agent:hunter2@portal.example",
                "ftp://***@portal.example",
            ),
            ("mailto:agent:hunter2@portal.example", "***@portal.example"),
        ] {
            let err =
                Endpoints::custom(portal, "https://api.example/api/v3", HttpPolicy::default())
                    .unwrap_err();
            assert!(
                matches!(&err, Error::InvalidUrl { what: "portal URL", url, .. } if url == shown),
                "{portal}: {err:?}"
            );
            for text in [err.to_string(), format!("{err:?}")] {
                assert!(
                    !text.contains("hunter2") && !text.contains("ter2"),
                    "{text}"
                );
                assert!(!text.contains("agent"), "{text}");
            }
        }
        let err = Endpoints::custom(
            "https://portal.example",
            "https://agent:hunter2@api.example/api/v3",
            HttpPolicy::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("must not contain a user name or password"),
            "{err}"
        );
        let err = Endpoints::custom(
            "http://agent:hunter2@portal.example",
            "https://api.example/api/v3",
            HttpPolicy::DangerAllowHttp,
        )
        .unwrap_err();
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
        let err = Endpoints::from_portal("https://agent:hunter2@portal1.comm100.io").unwrap_err();
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
        // An `@` without credentials is shown as it was given.
        assert_eq!(
            shown_url("http://api.example/a@b"),
            "http://api.example/a@b"
        );
        assert_eq!(
            shown_url("https://portal.example"),
            "https://portal.example"
        );
    }

    #[test]
    fn portal_forms_select_both_hosts() {
        for given in [
            "portal1.comm100.io",
            "https://portal1.comm100.io",
            "https://portal1.comm100.io/",
            " Portal1.Comm100.io/ ",
        ] {
            let e = Endpoints::from_portal(given).unwrap();
            assert_eq!(e.api_url(), "https://api1.comm100.io/api/v3", "{given}");
            assert_eq!(e.portal_url(), "https://portal1.comm100.io", "{given}");
        }
        assert_eq!(
            Endpoints::from_portal("portal12.comm100.io")
                .unwrap()
                .api_url(),
            "https://api12.comm100.io/api/v3"
        );
    }

    #[test]
    fn other_domains_are_refused_with_the_accepted_form() {
        for given in [
            "",
            "comm100.io",
            "portal.comm100.io",
            "portalx.comm100.io",
            "api1.comm100.io",
            "portal1.comm100.com",
            "http://portal1.comm100.io",
            "portal1.comm100.io.evil.com",
            "portal1.comm100.io/path",
        ] {
            let err = Endpoints::from_portal(given).unwrap_err();
            assert!(matches!(err, Error::InvalidDomain { .. }), "{given}: {err}");
            assert!(err.to_string().contains("portal{N}.comm100.io"), "{err}");
        }
    }

    #[test]
    fn plain_http_only_to_loopback_or_by_name() {
        let ok = Endpoints::custom(
            "http://127.0.0.1:8089",
            "http://localhost:8089/api/v3",
            HttpPolicy::default(),
        );
        assert!(ok.is_ok());
        let ok6 = Endpoints::custom(
            "http://[::1]:1",
            "https://example.com/api/v3",
            HttpPolicy::default(),
        );
        assert!(ok6.is_ok());
        let err = Endpoints::custom(
            "https://a.example",
            "http://api.example/api/v3",
            HttpPolicy::default(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InsecureUrl {
                    what: "API URL",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("http://api.example/api/v3"),
            "{err}"
        );
        assert!(Endpoints::custom(
            "http://a.example",
            "http://b.example/api/v3",
            HttpPolicy::DangerAllowHttp
        )
        .is_ok());
        let err = Endpoints::custom(
            "ftp://a.example",
            "https://b.example",
            HttpPolicy::default(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidUrl {
                    what: "portal URL",
                    ..
                }
            ),
            "{err}"
        );
    }
}
