//! A service behind the gateway and where its instances are: the `peers.<service>_url` setting,
//! a list of instances (`http://cart-1:8080, http://cart-2:8080 weight=2`) or one DNS name
//! whose every address is an instance (`dns+http://cart:8080`, what a Kubernetes headless
//! service or Compose's service name gives), re-resolved by the health task.

use crate::pool::{Balance, HealthRules, Instance, Pool};
use axum::http::Uri;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct UpstreamError {
    pub setting: &'static str,
    pub message: String,
}

/// Where the instances of a service come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The instances listed.
    Static,
    /// Every address `host` resolves to, on `port`.
    Dns { host: String, port: u16 },
}

/// One service behind the gateway: its instances and how requests are spread over them.
#[derive(Debug)]
pub struct Service {
    /// e.g. `cart`.
    pub name: &'static str,
    /// The setting its instances come from, for messages.
    pub setting: &'static str,
    pub source: Source,
    pub pool: Pool,
    /// Forward the client's `Host` (the pages check it against `Origin`); otherwise the
    /// instance's address is the `Host` and the client's is in `X-Forwarded-Host`.
    pub keep_host: bool,
}

/// One instance as the setting names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub base: String,
    pub authority: String,
    pub weight: u32,
}

impl Spec {
    pub fn instance(&self) -> Instance {
        Instance::new(&self.base, &self.authority, self.weight)
    }
}

impl Service {
    /// The service `name` at `value` (the setting `setting`).
    pub fn parse(
        name: &'static str,
        setting: &'static str,
        value: &str,
        balance: Balance,
        rules: HealthRules,
    ) -> Result<Service, UpstreamError> {
        let err = |m: String| UpstreamError {
            setting,
            message: m,
        };
        let value = value.trim();
        if let Some(rest) = value.strip_prefix("dns+") {
            let spec = parse_one(rest).map_err(err)?;
            let uri: Uri = spec
                .base
                .parse()
                .map_err(|_| err(format!("`{rest}` is not a URL")))?;
            let host = uri.host().unwrap_or_default().to_string();
            let port = uri.port_u16().unwrap_or(80);
            return Ok(Service {
                name,
                setting,
                source: Source::Dns { host, port },
                pool: Pool::new(balance, rules, Vec::new()),
                keep_host: false,
            });
        }
        let specs = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse_one)
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        if specs.is_empty() {
            return Err(err("names no instance".into()));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = specs.iter().find(|s| !seen.insert(s.base.clone())) {
            return Err(err(format!("lists {} twice", dup.base)));
        }
        Ok(Service {
            name,
            setting,
            source: Source::Static,
            pool: Pool::new(balance, rules, specs.iter().map(Spec::instance).collect()),
            keep_host: false,
        })
    }

    /// For a DNS source, the instances its name resolves to now (sorted, without duplicates).
    pub async fn resolve(&self) -> Result<Vec<Spec>, String> {
        let Source::Dns { host, port } = &self.source else {
            return Ok(Vec::new());
        };
        let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
            .await
            .map_err(|e| format!("{host}: {e}"))?
            .collect();
        addrs.sort();
        addrs.dedup();
        Ok(addrs
            .into_iter()
            .map(|a| Spec {
                base: format!("http://{a}"),
                authority: a.to_string(),
                weight: 1,
            })
            .collect())
    }
}

/// `http://host:port` with an optional ` weight=N` (1 to 100).
fn parse_one(item: &str) -> Result<Spec, String> {
    let mut words = item.split_whitespace();
    let url = words.next().unwrap_or_default();
    let mut weight = 1u32;
    for w in words {
        match w.strip_prefix("weight=").map(str::parse::<u32>) {
            Some(Ok(n)) if (1..=100).contains(&n) => weight = n,
            _ => {
                return Err(format!(
                    "`{w}`: only `weight=N` (1 to 100) may follow a URL"
                ));
            }
        }
    }
    let base: Uri = url
        .trim_end_matches('/')
        .parse()
        .map_err(|_| format!("`{url}` is not a URL"))?;
    match base.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(
                "https upstreams are not supported: keep service-to-service traffic on the \
                 cluster network (or a mesh that adds TLS) and use http://"
                    .into(),
            );
        }
        _ => return Err(format!("`{url}` must start with http://")),
    }
    let Some(authority) = base.authority().map(|a| a.to_string()) else {
        return Err(format!("`{url}` has no host"));
    };
    if base.path() != "/" && !base.path().is_empty() {
        return Err(format!(
            "`{url}` must not have a path: give the service's base URL"
        ));
    }
    Ok(Spec {
        base: format!("http://{authority}"),
        authority,
        weight,
    })
}

/// A path prefix of a service, e.g. `/api/carts` of `cart`.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub prefix: &'static str,
    /// Label of its requests in the gateway's metrics.
    pub route_label: &'static str,
    pub service: Arc<Service>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<Service, UpstreamError> {
        Service::parse(
            "cart",
            "peers.cart_url",
            v,
            Balance::LeastConnections,
            HealthRules::default(),
        )
    }

    #[test]
    fn upstream_urls_are_checked() {
        assert!(parse("http://127.0.0.1:8081").is_ok());
        assert!(parse("http://catalog:8080/").is_ok());
        for bad in [
            "https://catalog",
            "catalog:8080",
            "http://catalog/api",
            "",
            " , ",
            "http://a:1 weight=0",
            "http://a:1 weight=x",
            "http://a:1 heavy",
            "http://a:1, http://a:1/",
        ] {
            let e = parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} was accepted"));
            assert_eq!(e.setting, "peers.cart_url", "{bad:?}");
        }
    }

    #[test]
    fn a_list_names_each_instance_with_its_weight() {
        let s = parse("http://cart-1:8080, http://cart-2:8080 weight=3,http://10.0.0.3:9000/")
            .expect("parses");
        let got: Vec<(String, u32)> = s
            .pool
            .instances()
            .iter()
            .map(|i| (i.base.clone(), i.weight))
            .collect();
        assert_eq!(
            got,
            vec![
                ("http://cart-1:8080".into(), 1),
                ("http://cart-2:8080".into(), 3),
                ("http://10.0.0.3:9000".into(), 1)
            ]
        );
        assert_eq!(s.source, Source::Static);
    }

    #[tokio::test]
    async fn a_dns_name_is_every_address_it_resolves_to() {
        let s = parse("dns+http://localhost:8088").expect("parses");
        assert_eq!(
            s.source,
            Source::Dns {
                host: "localhost".into(),
                port: 8088
            }
        );
        let specs = s.resolve().await.expect("localhost resolves");
        assert!(!specs.is_empty());
        assert!(
            specs
                .iter()
                .all(|x| x.base.ends_with(":8088") && x.authority.ends_with(":8088")),
            "{specs:?}"
        );
        assert!(parse("dns+https://cart:1").is_err());
    }
}
