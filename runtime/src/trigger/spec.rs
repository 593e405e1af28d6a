//! The manifest's non-HTTP triggers, checked and resolved into [`Trigger`]s. Addresses, channels,
//! topics and credentials may use `{{ variable }}` templates (as Spin and the MQTT plugin allow);
//! they are rendered when the app starts, with its variables.

use std::time::Duration;

use crate::{
    app::Components,
    manifest::{self, ApplicationTriggers, ManifestError, Triggers},
};

/// A trigger other than HTTP, and the component it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The trigger's id: its `id`, or `TYPE-INDEX` in manifest order.
    pub id: String,
    /// The component it runs.
    pub component: String,
    /// What starts the component.
    pub kind: TriggerKind,
}

/// What starts a trigger's component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerKind {
    /// Each message published on `channel` of the Redis server at `address` (templates).
    Redis {
        /// `redis://` or `rediss://` URL, with credentials if any.
        address: String,
        /// The channel subscribed to.
        channel: String,
    },
    /// Each message on `topic` of the MQTT broker of `session`.
    Mqtt {
        /// The broker and how to connect to it.
        session: MqttSession,
        /// The topic filter subscribed to (a template).
        topic: String,
        /// The subscription's quality of service: 0, 1 or 2.
        qos: u8,
    },
    /// Each tick of a schedule with seconds, in UTC.
    Cron {
        /// `sec min hour day-of-month month day-of-week [year]`.
        expression: String,
    },
    /// Once, as a `wasi:cli` command, when the app starts; the app then exits with its status.
    Command,
}

/// The MQTT broker of an app's MQTT triggers, from `[application.trigger.mqtt]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttSession {
    /// `mqtt://host[:port]` (a template).
    pub address: String,
    /// The user, empty for none (a template).
    pub username: String,
    /// The password (a template).
    pub password: String,
    /// Pings while the connection is idle.
    pub keep_alive: Duration,
}

/// What a component must export to be run by a trigger of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    /// `wasi:http/incoming-handler`.
    Http,
    /// `fermyon:spin/inbound-redis`.
    Redis,
    /// `spin:mqtt-trigger`'s `handle-message`.
    Mqtt,
    /// `fermyon:spin-cron`'s `handle-cron-event`.
    Cron,
    /// `wasi:cli/run`.
    Command,
}

impl TriggerKind {
    /// The trigger type's name in the manifest: `redis`, `mqtt`, `cron`, `command`.
    pub fn name(&self) -> &'static str {
        match self {
            TriggerKind::Redis { .. } => "redis",
            TriggerKind::Mqtt { .. } => "mqtt",
            TriggerKind::Cron { .. } => "cron",
            TriggerKind::Command => "command",
        }
    }

    /// What the trigger's component must export.
    pub fn component_kind(&self) -> ComponentKind {
        match self {
            TriggerKind::Redis { .. } => ComponentKind::Redis,
            TriggerKind::Mqtt { .. } => ComponentKind::Mqtt,
            TriggerKind::Cron { .. } => ComponentKind::Cron,
            TriggerKind::Command => ComponentKind::Command,
        }
    }
}

impl ComponentKind {
    /// What the component must export, as error messages name it.
    pub fn export(self) -> &'static str {
        match self {
            ComponentKind::Http => "wasi:http/incoming-handler@0.2.x",
            ComponentKind::Redis => "fermyon:spin/inbound-redis",
            ComponentKind::Mqtt => "handle-message (the spin:mqtt-trigger spin-mqtt world)",
            ComponentKind::Cron => {
                "handle-cron-event (the fermyon:spin-cron@2.0.0 spin-cron world)"
            }
            ComponentKind::Command => "wasi:cli/run@0.2.x",
        }
    }
}

/// Reads the non-HTTP triggers, adding components written inline to `components`.
pub(crate) fn resolve(
    triggers: &Triggers,
    settings: &ApplicationTriggers,
    components: &mut Components,
) -> Result<Vec<Trigger>, ManifestError> {
    let at = components.at;
    let mut resolved = Vec::new();
    for (index, trigger) in triggers.redis.iter().enumerate() {
        let component = components.of_trigger(
            &trigger.component,
            &trigger_id(trigger.id.as_deref(), "redis", index),
        )?;
        let address = match (&trigger.address, &settings.redis) {
            (Some(address), _) => address,
            (None, Some(app)) => &app.address,
            (None, None) => {
                return Err(at.at(
                    &trigger.channel,
                    "a redis trigger needs an `address`, of its own or under \
                     [application.trigger.redis]",
                ));
            }
        };
        components.check_template(address, "redis trigger address")?;
        components.check_template(&trigger.channel, "redis trigger channel")?;
        resolved.push(Trigger {
            id: trigger_id(trigger.id.as_deref(), "redis", index),
            component,
            kind: TriggerKind::Redis {
                address: address.get_ref().clone(),
                channel: trigger.channel.get_ref().clone(),
            },
        });
    }
    for (index, trigger) in triggers.mqtt.iter().enumerate() {
        let component = components.of_trigger(
            &trigger.component,
            &trigger_id(trigger.id.as_deref(), "mqtt", index),
        )?;
        let Some(app) = &settings.mqtt else {
            return Err(at.at(
                &trigger.topic,
                "an mqtt trigger needs its broker under [application.trigger.mqtt] (address, \
                 username, password, keep_alive_interval)",
            ));
        };
        let session = mqtt_session(app, components)?;
        components.check_template(&trigger.topic, "mqtt trigger topic")?;
        let qos = match trigger.qos.get_ref().trim() {
            "0" => 0,
            "1" => 1,
            "2" => 2,
            other => {
                return Err(at.at(
                    &trigger.qos,
                    format!("mqtt trigger qos `{other}`: expected \"0\", \"1\" or \"2\""),
                ));
            }
        };
        resolved.push(Trigger {
            id: trigger_id(trigger.id.as_deref(), "mqtt", index),
            component,
            kind: TriggerKind::Mqtt {
                session,
                topic: trigger.topic.get_ref().clone(),
                qos,
            },
        });
    }
    for (index, trigger) in triggers.cron.iter().enumerate() {
        let component = components.of_trigger(
            &trigger.component,
            &trigger_id(trigger.id.as_deref(), "cron", index),
        )?;
        let expression = trigger.cron_expression.get_ref().trim().to_owned();
        super::cron::schedule(&expression).map_err(|err| at.at(&trigger.cron_expression, err))?;
        resolved.push(Trigger {
            id: trigger_id(trigger.id.as_deref(), "cron", index),
            component,
            kind: TriggerKind::Cron { expression },
        });
    }
    for (index, trigger) in triggers.command.iter().enumerate() {
        let component = components.of_trigger(
            &trigger.component,
            &trigger_id(trigger.id.as_deref(), "command", index),
        )?;
        if index > 0
            || !triggers.http.is_empty()
            || resolved.iter().any(|t| t.kind.name() != "command")
        {
            return Err(at.at(
                &trigger.component,
                "a command app has exactly one trigger, its [[trigger.command]]: it runs once and \
                 exits, so it cannot also serve other triggers",
            ));
        }
        resolved.push(Trigger {
            id: trigger_id(trigger.id.as_deref(), "command", index),
            component,
            kind: TriggerKind::Command,
        });
    }
    for trigger in &resolved {
        let same_component = resolved.iter().find(|other| {
            other.component == trigger.component
                && other.kind.component_kind() != trigger.kind.component_kind()
        });
        if let Some(other) = same_component {
            return Err(at.error(
                0,
                format!(
                    "component `{}` is run by a {} trigger and a {} trigger: a component exports one \
                     kind of handler; give each trigger a component of its own",
                    trigger.component,
                    trigger.kind.name(),
                    other.kind.name()
                ),
            ));
        }
    }
    let http_components: Vec<_> = triggers
        .http
        .iter()
        .filter_map(|trigger| match trigger.component.get_ref() {
            manifest::ComponentRef::Id(id) => Some(id),
            manifest::ComponentRef::Inline(_) => None,
        })
        .collect();
    if let Some(trigger) = resolved
        .iter()
        .find(|trigger| http_components.contains(&&trigger.component))
    {
        return Err(at.error(
            0,
            format!(
                "component `{}` is run by an http trigger and a {} trigger: a component exports one \
                 kind of handler; give each trigger a component of its own",
                trigger.component,
                trigger.kind.name()
            ),
        ));
    }
    Ok(resolved)
}

fn trigger_id(id: Option<&str>, kind: &str, index: usize) -> String {
    id.map_or_else(|| format!("{kind}-{index}"), str::to_owned)
}

fn mqtt_session(
    app: &manifest::MqttTriggerSettings,
    components: &Components,
) -> Result<MqttSession, ManifestError> {
    components.check_template(&app.address, "mqtt address")?;
    for (value, what) in [
        (&app.username, "mqtt username"),
        (&app.password, "mqtt password"),
    ] {
        if let Some(value) = value {
            components.check_template(value, what)?;
        }
    }
    let keep_alive = match &app.keep_alive_interval {
        None => Duration::from_secs(30),
        Some(seconds) => match seconds.get_ref().trim().parse::<u64>() {
            Ok(seconds) if (1..=65_535).contains(&seconds) => Duration::from_secs(seconds),
            _ => {
                return Err(components.at.at(
                    seconds,
                    format!(
                        "keep_alive_interval `{}`: expected whole seconds from 1 to 65535, as a string",
                        seconds.get_ref()
                    ),
                ));
            }
        },
    };
    Ok(MqttSession {
        address: app.address.get_ref().clone(),
        username: app
            .username
            .as_ref()
            .map(|u| u.get_ref().clone())
            .unwrap_or_default(),
        password: app
            .password
            .as_ref()
            .map(|p| p.get_ref().clone())
            .unwrap_or_default(),
        keep_alive,
    })
}

/// `triggers` with their templates rendered with the app's variable `values`.
pub(crate) fn render(
    triggers: &[Trigger],
    values: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<Trigger>, String> {
    let render = |template: &str, what: &str, trigger: &Trigger| {
        crate::template::render(template, values).map_err(|unset| {
            format!(
                "trigger `{}`: its {what} uses `{unset}`, which has no value and no default",
                trigger.id
            )
        })
    };
    triggers
        .iter()
        .map(|trigger| {
            let kind = match &trigger.kind {
                TriggerKind::Redis { address, channel } => TriggerKind::Redis {
                    address: render(address, "address", trigger)?,
                    channel: render(channel, "channel", trigger)?,
                },
                TriggerKind::Mqtt {
                    session,
                    topic,
                    qos,
                } => TriggerKind::Mqtt {
                    session: MqttSession {
                        address: render(&session.address, "address", trigger)?,
                        username: render(&session.username, "username", trigger)?,
                        password: render(&session.password, "password", trigger)?,
                        keep_alive: session.keep_alive,
                    },
                    topic: render(topic, "topic", trigger)?,
                    qos: *qos,
                },
                other => other.clone(),
            };
            Ok(Trigger {
                kind,
                ..trigger.clone()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::App;

    fn load(triggers: &str) -> Result<App, ManifestError> {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"a\"\n[variables]\nhost = {{ default = \"h:1\" }}\n{triggers}\n[component.c]\nsource = \"c.wasm\"\n"
        );
        std::fs::write(dir.path().join("spin.toml"), text).unwrap();
        App::load(dir.path())
    }

    #[test]
    fn reads_each_trigger_type() {
        let app = load(
            "[application.trigger.redis]\naddress = \"redis://{{ host }}\"\n\
             [[trigger.redis]]\nchannel = \"jobs\"\ncomponent = \"c\"\n",
        )
        .unwrap();
        assert_eq!(
            app.triggers,
            [Trigger {
                id: "redis-0".into(),
                component: "c".into(),
                kind: TriggerKind::Redis {
                    address: "redis://{{ host }}".into(),
                    channel: "jobs".into()
                },
            }]
        );
        assert_eq!(app.component_kind("c"), ComponentKind::Redis);
        assert_eq!(
            app.trigger_types().into_iter().collect::<Vec<_>>(),
            ["redis"]
        );

        let cron =
            load("[[trigger.cron]]\ncron_expression = \"*/5 * * * * *\"\ncomponent = \"c\"\n")
                .unwrap();
        assert_eq!(cron.component_kind("c"), ComponentKind::Cron);
        let command = load("[[trigger.command]]\ncomponent = \"c\"\n").unwrap();
        assert!(command.is_command());
    }

    #[test]
    fn mistakes_are_located() {
        let err = load("[[trigger.redis]]\nchannel = \"jobs\"\ncomponent = \"c\"\n").unwrap_err();
        assert_eq!(err.line, 7, "{err}");
        assert!(err.message.contains("needs an `address`"), "{err}");
        let err = load(
            "[application.trigger.redis]\naddress = \"redis://{{ nope }}\"\n\
             [[trigger.redis]]\nchannel = \"jobs\"\ncomponent = \"c\"\n",
        )
        .unwrap_err();
        assert!(err.message.contains("uses `nope`"), "{err}");
        let err =
            load("[[trigger.mqtt]]\ntopic = \"t\"\nqos = \"1\"\ncomponent = \"c\"\n").unwrap_err();
        assert!(err.message.contains("[application.trigger.mqtt]"), "{err}");
        let err = load(
            "[[trigger.cron]]\ncron_expression = \"*/5 * * * * *\"\ncomponent = \"c\"\n\
             [[trigger.command]]\ncomponent = \"c\"\n",
        )
        .unwrap_err();
        assert!(err.message.contains("exactly one trigger"), "{err}");
        let err = load("[[trigger.sqs]]\nqueue_url = \"q\"\ncomponent = \"c\"\n").unwrap_err();
        assert!(err.message.contains("`sqs` is not supported"), "{err}");
    }
}
