//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leader election does it:
//! the holder renews the Lease's `renewTime` well within its `leaseDurationSeconds`; anyone may
//! take a Lease whose holder has not renewed it for that long. Every write carries the
//! `resourceVersion` it read, so two candidates cannot both win: the apiserver refuses the
//! second write (409) and that candidate stays a follower.
//!
//! Only the leader runs passes; a reconciler that loses the Lease stops before its next write.

use std::time::Duration;

use anyhow::{Context as _, Result};
use k8s_openapi::{
    api::coordination::v1::{Lease as KubeLease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::api::{Api, PostParams};

/// What a candidate should do with the Lease as it found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or the holder stopped renewing it: take it.
    Take,
    /// This candidate holds it: renew it.
    Renew,
    /// Someone else holds it and renews it.
    Follow(String),
}

/// Decides what `identity` does with `spec` (the Lease as read; `None` if there is none) at `now`.
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Take;
    };
    let Some(holder) = spec.holder_identity.as_deref().filter(|h| !h.is_empty()) else {
        return Decision::Take;
    };
    if holder == identity {
        return Decision::Renew;
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15).max(1));
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|time| time.0);
    match renewed {
        Some(renewed) if now.as_second() - renewed.as_second() <= duration => {
            Decision::Follow(holder.to_owned())
        }
        _ => Decision::Take,
    }
}

/// One candidate for a Lease.
pub struct Election {
    api: Api<KubeLease>,
    client: kube::Client,
    /// Where the Lease lives, made by the first round when missing (no pass, which would make
    /// it, runs before a leader is elected).
    namespace: String,
    name: String,
    identity: String,
    duration: Duration,
}

/// Who holds the Lease after a round of [`Election::round`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's identity, if anyone holds it.
    pub identity: Option<String>,
    /// Whether that is this candidate.
    pub me: bool,
}

impl Election {
    /// A candidate called `identity` for Lease `name` in `namespace`, held `duration` without
    /// renewal before others may take it.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        Election {
            api: Api::namespaced(client.clone(), namespace),
            client,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
        }
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// How often the holder renews: a third of the duration, as client-go does.
    pub fn renew_every(&self) -> Duration {
        self.duration / 3
    }

    /// Takes or renews the Lease if this candidate may, and says who holds it.
    pub async fn round(&self) -> Result<Holder> {
        let found = self
            .api
            .get_opt(&self.name)
            .await
            .with_context(|| format!("could not read Lease {}", self.name))?;
        let now = Timestamp::now();
        let decision = decide(
            found.as_ref().and_then(|lease| lease.spec.as_ref()),
            &self.identity,
            now,
        );
        let spec = |previous: Option<&LeaseSpec>, take: bool| {
            let mut spec = previous.cloned().unwrap_or_default();
            spec.holder_identity = Some(self.identity.clone());
            spec.lease_duration_seconds = Some(self.duration.as_secs().max(1) as i32);
            spec.renew_time = Some(MicroTime(now));
            if take {
                spec.acquire_time = Some(MicroTime(now));
                spec.lease_transitions = Some(
                    previous
                        .and_then(|spec| spec.lease_transitions)
                        .unwrap_or(0)
                        + i32::from(previous.is_some()),
                );
            }
            spec
        };
        let written = match (decision, found) {
            (Decision::Follow(holder), _) => {
                return Ok(Holder {
                    identity: Some(holder),
                    me: false,
                });
            }
            (_, None) => {
                let lease = KubeLease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec(None, true)),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Err(kube::Error::Api(status)) if status.code == 404 => {
                        crate::cluster::ensure_namespace(&self.client, &self.namespace).await?;
                        self.api.create(&PostParams::default(), &lease).await
                    }
                    written => written,
                }
            }
            (decision, Some(mut lease)) => {
                // The resourceVersion read stays on the object: a concurrent write fails.
                lease.spec = Some(spec(lease.spec.as_ref(), decision == Decision::Take));
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(_) => Ok(Holder {
                identity: Some(self.identity.clone()),
                me: true,
            }),
            // Another candidate wrote first: it holds the Lease now.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let holder = self
                    .api
                    .get_opt(&self.name)
                    .await?
                    .and_then(|lease| lease.spec?.holder_identity);
                Ok(Holder {
                    identity: holder,
                    me: false,
                })
            }
            Err(err) => Err(crate::cluster::readable(
                err,
                &format!("Lease {}", self.name),
                "write",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed_seconds_ago: i64, now: Timestamp) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(
                Timestamp::from_second(now.as_second() - renewed_seconds_ago).unwrap(),
            )),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_is_taken_when_free_or_stale_renewed_by_its_holder_and_otherwise_followed() {
        let now = Timestamp::now();
        assert_eq!(decide(None, "a", now), Decision::Take);
        assert_eq!(
            decide(Some(&LeaseSpec::default()), "a", now),
            Decision::Take
        );
        assert_eq!(decide(Some(&lease("a", 3, now)), "a", now), Decision::Renew);
        assert_eq!(
            decide(Some(&lease("a", 60, now)), "a", now),
            Decision::Renew
        );
        assert_eq!(
            decide(Some(&lease("b", 3, now)), "a", now),
            Decision::Follow("b".to_owned())
        );
        assert_eq!(
            decide(Some(&lease("b", 15, now)), "a", now),
            Decision::Follow("b".to_owned())
        );
        assert_eq!(decide(Some(&lease("b", 16, now)), "a", now), Decision::Take);
    }
}
