//! Usage from cAdvisor-style series in Prometheus: one query per metric
//! (CPU rate, working set, the two limits, OOM events) for all containers,
//! never one per service, so a check over 1,000 services costs five
//! queries. Series are matched to containers by the name label.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::Utc;

use super::source::{Cpu, Managed, Sample, Samples, UsageSource};
use crate::config::watch::PromQueries;
use crate::metrics::PrometheusClient;

pub struct PrometheusSource<'a> {
    pub client: &'a PrometheusClient,
    pub queries: PromQueries,
}

#[async_trait]
impl UsageSource for PrometheusSource<'_> {
    fn name(&self) -> &'static str {
        "prometheus"
    }

    async fn read(&self, containers: &[Managed]) -> Samples {
        let q = &self.queries;
        let (cpu, memory, cpu_limit, memory_limit, oom) = tokio::join!(
            self.by_name("cpu", &q.cpu),
            self.by_name("memory", &q.memory),
            self.by_name("cpu_limit", &q.cpu_limit),
            self.by_name("memory_limit", &q.memory_limit),
            self.by_name("oom", &q.oom),
        );
        let read_at = Utc::now();
        containers
            .iter()
            .map(|c| {
                let name = c.container_name.as_str();
                let sample = match (&cpu, &memory) {
                    (Err(e), _) | (_, Err(e)) => Err(e.clone()),
                    (Ok(cpu), Ok(memory)) => match (cpu.get(name), memory.get(name)) {
                        (Some(cpu), Some(mem)) => Ok(Sample {
                            read_at,
                            cpu: Cpu::Rate(*cpu),
                            cpu_limit: lookup(&cpu_limit, name).unwrap_or(0.0),
                            memory_used: *mem as u64,
                            memory_limit: lookup(&memory_limit, name).unwrap_or(0.0) as u64,
                            oom_kills: lookup(&oom, name).unwrap_or(0.0) as u64,
                        }),
                        _ => Err(format!(
                            "no series with {}={name:?} from watch.prometheus.cpu or .memory",
                            q.name_label
                        )),
                    },
                };
                (c.container_id.clone(), sample)
            })
            .collect()
    }
}

fn lookup(series: &Result<HashMap<String, f64>, String>, name: &str) -> Option<f64> {
    series.as_ref().ok()?.get(name).copied()
}

impl PrometheusSource<'_> {
    /// One query; its series by container name (Docker's `/name` or `name`).
    async fn by_name(&self, what: &str, query: &str) -> Result<HashMap<String, f64>, String> {
        let series: Vec<(BTreeMap<String, String>, f64)> = self
            .client
            .vector(what, query)
            .await
            .map_err(|e| e.to_string())?;
        Ok(series
            .into_iter()
            .filter_map(|(labels, v)| {
                let name = labels.get(&self.queries.name_label)?;
                Some((name.trim_start_matches('/').to_string(), v))
            })
            .collect())
    }
}
