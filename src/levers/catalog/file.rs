//! Reading `config/levers.yaml`: the file's shape (a map in file order, one
//! flat spec per lever) and the checks that turn a spec into a [`Lever`],
//! every problem reported as `file:line:col: levers.<name>.<field>: ...`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{Catalog, Cost, Lever, Resource, Symptom, Target, SYMPTOMS};
use crate::config::load::{locate, parse_yaml};
use crate::config::units::{parse_bytes, parse_cpus};

/// Settings that trade durability for speed. A catalog may list them only
/// with `allow_unsafe: true`, so nobody loses data to a copied example.
const UNSAFE_PARAMETERS: &[&str] = &["fsync", "synchronous_commit", "full_page_writes"];

impl Catalog {
    pub fn load(path: &Path) -> Result<Catalog, Vec<String>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![format!(
                "cannot read lever catalog {}: {e}; set paths.levers in tuner.yaml",
                path.display()
            )]
        })?;
        let mut catalog = Catalog::parse(path, &text)?;
        // An env lever's `file:` is relative to the catalog, like paths in tuner.yaml.
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        for lever in &mut catalog.levers {
            if let Target::Env { file: Some(f), .. } = &mut lever.target {
                if f.is_relative() {
                    *f = base.join(&*f);
                }
            }
        }
        Ok(catalog)
    }

    /// Parses and validates, returning every problem as `file:line:col: ...`.
    pub fn parse(path: &Path, text: &str) -> Result<Catalog, Vec<String>> {
        let file: LeversFile = parse_yaml(path, text).map_err(|e| vec![e])?;
        let mut problems = Vec::new();
        let mut levers = Vec::new();
        for (name, spec) in file.levers.0 {
            match spec.into_lever(&name) {
                Ok(lever) => levers.push(lever),
                Err(found) => {
                    for (field, problem) in found {
                        let at = locate(path, text, &["levers", &name, field]);
                        problems.push(format!("{at}: levers.{name}.{field}: {problem}"));
                    }
                }
            }
        }
        if levers.is_empty() && problems.is_empty() {
            problems.push(format!(
                "{}: levers: the catalog lists no lever",
                locate(path, text, &["levers"])
            ));
        }
        if problems.is_empty() {
            Ok(Catalog { levers })
        } else {
            Err(problems)
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeversFile {
    levers: OrderedLevers,
}

/// The `levers:` map in file order (a BTreeMap would sort by name and lose
/// the ranking).
struct OrderedLevers(Vec<(String, LeverSpec)>);

impl<'de> Deserialize<'de> for OrderedLevers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedLevers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map from lever name to its spec")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedLevers, A::Error> {
                let mut out: Vec<(String, LeverSpec)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(format!("lever {name:?} is listed twice")));
                    }
                    let spec = map.next_value::<LeverSpec>()?;
                    out.push((name, spec));
                }
                Ok(OrderedLevers(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Postgres,
    Container,
    Env,
    Command,
}

/// One lever as written. Flat (no `flatten`, which would disable
/// `deny_unknown_fields`); which fields are required depends on `kind` and
/// is checked in `into_lever`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeverSpec {
    kind: Kind,
    cost: Cost,
    symptoms: Vec<Symptom>,
    values: Values,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameter: Option<String>,
    #[serde(default)]
    allow_unsafe: bool,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    apply: Option<Vec<String>>,
    #[serde(default)]
    rollback: Option<Vec<String>>,
}

type Problems = Vec<(&'static str, String)>;

impl LeverSpec {
    fn into_lever(self, name: &str) -> Result<Lever, Problems> {
        let mut problems: Problems = Vec::new();
        if self.symptoms.is_empty() {
            problems.push((
                "symptoms",
                format!("list at least one symptom ({SYMPTOMS})"),
            ));
        }
        let values = self.values.0;
        if values.is_empty() {
            problems.push((
                "values",
                "list at least one candidate value, in the order to try them".into(),
            ));
        }
        if values.iter().any(|v| v.trim().is_empty()) {
            problems.push(("values", "a candidate value is empty".into()));
        }
        let mut require = |field: &'static str, value: Option<String>| match value {
            Some(v) if !v.trim().is_empty() => v,
            _ => {
                problems.push((field, format!("required for kind {:?}", self.kind)));
                String::new()
            }
        };
        let target = match self.kind {
            Kind::Postgres => {
                let parameter = require("parameter", self.parameter.clone());
                Target::Postgres {
                    parameter,
                    allow_unsafe: self.allow_unsafe,
                }
            }
            Kind::Container => {
                let service = require("service", self.service.clone());
                let resource = self.resource.unwrap_or(Resource::Cpus);
                if self.resource.is_none() {
                    problems.push((
                        "resource",
                        "required for kind container: cpus or memory".into(),
                    ));
                }
                Target::Container { service, resource }
            }
            Kind::Env => {
                let key = require("key", self.key.clone());
                let service = require("service", self.service.clone());
                Target::Env {
                    file: self.file.clone(),
                    key,
                    service,
                }
            }
            Kind::Command => {
                let apply = self.apply.clone().unwrap_or_default();
                let rollback = self.rollback.clone().unwrap_or_default();
                if apply.is_empty() {
                    problems.push(("apply", "required for kind command: the argv to run, e.g. [\"/usr/local/bin/pool\", \"on\"]".into()));
                }
                if rollback.is_empty() {
                    problems.push((
                        "rollback",
                        "required for kind command: the argv that undoes `apply`".into(),
                    ));
                }
                Target::Command { apply, rollback }
            }
        };
        let stray: &[(&'static str, bool)] = match self.kind {
            Kind::Postgres => &[
                ("service", self.service.is_some()),
                ("key", self.key.is_some()),
                ("apply", self.apply.is_some()),
            ],
            Kind::Container => &[
                ("parameter", self.parameter.is_some()),
                ("key", self.key.is_some()),
                ("apply", self.apply.is_some()),
            ],
            Kind::Env => &[
                ("parameter", self.parameter.is_some()),
                ("resource", self.resource.is_some()),
                ("apply", self.apply.is_some()),
            ],
            Kind::Command => &[
                ("parameter", self.parameter.is_some()),
                ("service", self.service.is_some()),
                ("key", self.key.is_some()),
            ],
        };
        for (field, present) in stray {
            if *present {
                problems.push((
                    field,
                    format!("does not apply to kind {:?}; remove it", self.kind),
                ));
            }
        }
        if self.allow_unsafe && !matches!(self.kind, Kind::Postgres) {
            problems.push(("allow_unsafe", "only postgres levers can be unsafe".into()));
        }
        match &target {
            Target::Postgres {
                parameter,
                allow_unsafe,
            } => {
                if UNSAFE_PARAMETERS.contains(&parameter.as_str()) && !allow_unsafe {
                    problems.push((
                        "parameter",
                        format!("{parameter} can lose committed data on a crash; add `allow_unsafe: true` if you accept that"),
                    ));
                }
            }
            Target::Container { resource, .. } => {
                for v in &values {
                    let bad = match resource {
                        Resource::Cpus => parse_cpus(v).err().map(|e| e.to_string()),
                        Resource::Memory => parse_bytes(v).err().map(|e| e.to_string()),
                    };
                    if let Some(e) = bad {
                        problems.push(("values", e));
                    }
                }
            }
            Target::Env { key, .. } => {
                let valid = key
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !key.is_empty() && !valid {
                    problems.push((
                        "key",
                        format!("{key:?} is not an env variable name (letters, digits, _)"),
                    ));
                }
            }
            Target::Command { .. } => {}
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Lever {
            name: name.to_string(),
            cost: self.cost,
            symptoms: self.symptoms,
            values,
            description: self.description,
            target,
        })
    }
}

/// Candidate values as strings, accepting YAML numbers and booleans too
/// (`values: [500, 1000]`), so the file reads naturally.
struct Values(Vec<String>);

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Scalar(String);
        impl<'de> Deserialize<'de> for Scalar {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct S;
                impl Visitor<'_> for S {
                    type Value = Scalar;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a value such as \"4GB\", 500 or on")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                        Ok(Scalar(v.to_string()))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                        Ok(Scalar(v.to_string()))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                        Ok(Scalar(v.to_string()))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                        Ok(Scalar(v.to_string()))
                    }
                    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                        Ok(Scalar(if v { "on" } else { "off" }.to_string()))
                    }
                }
                d.deserialize_any(S)
            }
        }
        struct L;
        impl<'de> Visitor<'de> for L {
            type Value = Values;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of candidate values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Values, A::Error> {
                let mut out = Vec::new();
                while let Some(Scalar(v)) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Values(out))
            }
        }
        d.deserialize_seq(L)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Catalog, Vec<String>> {
        Catalog::parse(Path::new("config/levers.yaml"), text)
    }

    #[test]
    fn shipped_catalog_is_valid_and_never_unsafe() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/levers.yaml");
        let catalog = Catalog::load(&path).unwrap_or_else(|e| panic!("{}", e.join("\n")));
        for symptom in [
            Symptom::HighWalRate,
            Symptom::HighIoWait,
            Symptom::HighWriteLatency,
            Symptom::CpuPressure,
            Symptom::MemoryPressure,
        ] {
            assert!(
                catalog.levers.iter().any(|l| l.treats(symptom)),
                "no lever for {symptom}"
            );
        }
        for lever in &catalog.levers {
            if let Target::Postgres {
                parameter,
                allow_unsafe,
            } = &lever.target
            {
                assert!(!allow_unsafe, "{}", lever.name);
                // Measured to do nothing for WAL volume (REFERENCE.md d5, d7).
                assert!(!(parameter == "wal_buffers" && lever.treats(Symptom::HighWalRate)));
                assert_ne!(parameter, "synchronous_commit");
            }
        }
        // The WAL levers are the reload-only ones that measurably move WAL.
        let wal: Vec<&str> = catalog
            .levers
            .iter()
            .filter(|l| l.treats(Symptom::HighWalRate) && l.cost == Cost::Low)
            .map(|l| l.name.as_str())
            .collect();
        assert_eq!(
            &wal[..4],
            [
                "max_wal_size",
                "wal_compression",
                "wal_compression_lz4",
                "checkpoint_timeout"
            ]
        );
    }

    #[test]
    fn keeps_file_order_and_accepts_numbers() {
        let c = parse(
            "levers:\n  zeta:\n    kind: env\n    key: BATCH_SIZE\n    service: app\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [500, 1000]\n  alpha:\n    kind: container\n    service: postgres\n    resource: memory\n    cost: high\n    symptoms: [memory_pressure]\n    values: [1G]\n",
        )
        .unwrap();
        assert_eq!(c.levers[0].name, "zeta");
        assert_eq!(c.levers[0].values, ["500", "1000"]);
        assert_eq!(c.levers[1].assignment(Some("1G")), "postgres.memory=1G");
    }

    #[test]
    fn unknown_kind_symptom_and_field_are_located() {
        let err = parse("levers:\n  x:\n    kind: magic\n    cost: low\n    symptoms: [high_wal_rate]\n    values: [1]\n").unwrap_err();
        assert!(err[0].starts_with("config/levers.yaml:3:"), "{err:?}");
        assert!(err[0].contains("magic"), "{err:?}");

        let err = parse("levers:\n  x:\n    kind: postgres\n    parameter: a\n    cost: low\n    symptoms: [slow_disk]\n    values: [1]\n")
            .unwrap_err();
        assert!(err[0].starts_with("config/levers.yaml:6:"), "{err:?}");
        assert!(err[0].contains("slow_disk"), "{err:?}");

        let err = parse("levers:\n  x:\n    kind: postgres\n    parameter: a\n    cost: low\n    symptoms: [cpu_pressure]\n    values: [1]\n    restart: false\n")
            .unwrap_err();
        assert!(err[0].contains("restart"), "{err:?}");
        assert!(err[0].starts_with("config/levers.yaml:8:"), "{err:?}");
    }

    #[test]
    fn empty_values_missing_fields_and_unsafe_are_all_reported() {
        let text = "levers:\n  a:\n    kind: postgres\n    parameter: work_mem\n    cost: low\n    symptoms: [cpu_pressure]\n    values: []\n  b:\n    kind: container\n    cost: high\n    symptoms: [cpu_pressure]\n    values: [lots]\n  c:\n    kind: postgres\n    parameter: synchronous_commit\n    cost: low\n    symptoms: [high_write_latency]\n    values: [off]\n";
        let err = parse(text).unwrap_err();
        let all = err.join("\n");
        assert!(
            all.contains("config/levers.yaml:7:5: levers.a.values: list at least one"),
            "{all}"
        );
        assert!(all.contains("levers.b.service: required"), "{all}");
        assert!(all.contains("levers.b.resource: required"), "{all}");
        assert!(
            all.contains("levers.c.parameter: synchronous_commit can lose committed data"),
            "{all}"
        );
        assert!(all.contains("config/levers.yaml:15:"), "{all}");
    }

    #[test]
    fn duplicate_lever_is_refused() {
        let text = "levers:\n  a:\n    kind: postgres\n    parameter: x\n    cost: low\n    symptoms: [cpu_pressure]\n    values: [1]\n  a:\n    kind: postgres\n    parameter: y\n    cost: low\n    symptoms: [cpu_pressure]\n    values: [1]\n";
        let err = parse(text).unwrap_err();
        assert!(
            err[0].contains("listed twice") || err[0].contains("duplicate"),
            "{err:?}"
        );
    }
}
