//! Reservations in the override, per Compose file format.

use std::path::Path;

use super::compose_override::{set_reservations, ServiceReservations};
use crate::config::yaml::{self, Value};

#[test]
fn reservations_follow_the_file_format() {
    let res = ServiceReservations {
        cpus: 0.25,
        memory: 128 << 20,
    };
    let v2 = set_reservations(
        Path::new("o.yml"),
        "services:\n  db:\n    cpus: 1.0\n",
        false,
        "db",
        res,
    )
    .unwrap();
    let v: Value = yaml::from_str(&v2).unwrap();
    assert_eq!(
        v["services"]["db"]["mem_reservation"],
        Value::String("128m".into())
    );
    assert_eq!(
        v["services"]["db"]["cpus"],
        Value::Number(yaml::Number::from(1.0))
    );
    assert!(v["services"]["db"].get("deploy").is_none());
    let v3 = set_reservations(Path::new("o.yml"), "services: {}\n", true, "db", res).unwrap();
    let v: Value = yaml::from_str(&v3).unwrap();
    let r = &v["services"]["db"]["deploy"]["resources"]["reservations"];
    assert_eq!(r["cpus"], Value::String("0.25".into()));
    assert_eq!(r["memory"], Value::String("128m".into()));
}
