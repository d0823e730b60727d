//! Core v1 Events and events.k8s.io/v1 Events are one resource stored in
//! the core form, as in the real server: these convert between the two.

use serde_json::{Map, Value};

/// (core v1 field, events.k8s.io/v1 field) of the fields that only rename.
const RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
    ("metadata", "metadata"),
    ("type", "type"),
    ("reason", "reason"),
    ("action", "action"),
    ("related", "related"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingInstance", "reportingInstance"),
];

fn rename(object: &Value, api_version: &str, to_new: bool) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::from(api_version));
    out.insert("kind".into(), Value::from("Event"));
    for (core, new) in RENAMES {
        let (from, to) = if to_new { (core, new) } else { (new, core) };
        if let Some(value) = object.get(*from).filter(|v| !v.is_null()) {
            out.insert((*to).to_string(), value.clone());
        }
    }
    Value::Object(out)
}

/// An events.k8s.io/v1 Event in the stored (core v1) form.
pub fn to_core(event: &Value) -> Value {
    rename(event, "v1", false)
}

/// A stored (core v1) Event as events.k8s.io/v1 serves it.
pub fn to_events_v1(event: &Value) -> Value {
    rename(event, "events.k8s.io/v1", true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_events_v1_event_round_trips_through_the_core_form() {
        let event = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "default"},
            "regarding": {"kind": "Deployment", "name": "web"},
            "note": "applied", "reason": "Applied", "type": "Normal", "action": "Apply",
            "reportingController": "stackd", "reportingInstance": "stackd-0",
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"},
        });
        let core = to_core(&event);
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["message"], "applied");
        assert_eq!(core["reportingComponent"], "stackd");
        assert_eq!(to_events_v1(&core), event);
    }
}
