//! Which hosts a client talks to: the control-panel host, which issues tokens, and the API
//! base, which serves every other operation.

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
            given: domain.to_string(),
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

    /// The API host's origin: the only origin that ever receives the token.
    pub(crate) fn api_origin(&self) -> reqwest::Url {
        self.api.clone()
    }
}

fn checked_url(what: &'static str, raw: &str, policy: HttpPolicy) -> Result<Url, Error> {
    let url = Url::parse(raw.trim()).map_err(|e| Error::InvalidUrl {
        what,
        url: raw.to_string(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "https" => {}
        "http" if policy == HttpPolicy::DangerAllowHttp || is_loopback(&url) => {}
        "http" => {
            return Err(Error::InsecureUrl {
                what,
                url: raw.to_string(),
            })
        }
        other => {
            return Err(Error::InvalidUrl {
                what,
                url: raw.to_string(),
                reason: format!("the scheme must be https, not {other}"),
            })
        }
    }
    if url.host().is_none() {
        return Err(Error::InvalidUrl {
            what,
            url: raw.to_string(),
            reason: "it has no host".into(),
        });
    }
    Ok(url)
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
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
