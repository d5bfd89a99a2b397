//! A bounded HTTP load generator: `workers` tasks, each opening a new TCP
//! connection per request (the harsh case for a swap: every request is a
//! fresh routing decision) to 127.0.0.1, paced to a total target rate.
//! It stops at `max_requests`, at `max_duration`, or when told to,
//! whichever comes first, and counts every failure: connect errors, non-200
//! answers, timeouts and bodies shorter than their Content-Length.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub port: u16,
    pub path: String,
    pub workers: usize,
    /// Total requests per second across workers.
    pub rate: f64,
    pub max_requests: u64,
    pub max_duration: Duration,
    pub request_timeout: Duration,
}

impl LoadConfig {
    pub fn new(port: u16, path: &str) -> LoadConfig {
        LoadConfig {
            port,
            path: path.to_string(),
            workers: 16,
            rate: 400.0,
            max_requests: 200_000,
            max_duration: Duration::from_secs(120),
            request_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub sent: u64,
    pub ok: u64,
    /// Failure kind (`connect`, `status 503`, `truncated`, `timeout`, ...) -> count.
    pub failures: BTreeMap<String, u64>,
    /// Body of each 200 answer (trimmed) -> count: which server answered.
    pub bodies: BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// Time of the first and last failure after the start.
    pub failure_window: Option<(Duration, Duration)>,
}

impl LoadReport {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn summary(&self) -> String {
        format!(
            "{} requests in {:.2}s ({:.0} req/s), {} failed {:?}, answers {:?}",
            self.sent,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.failed(),
            self.failures,
            self.bodies
        )
    }
}

#[derive(Default)]
struct Shared {
    sent: AtomicU64,
    ok: AtomicU64,
    tally: Mutex<Tally>,
}

#[derive(Default)]
struct Tally {
    failures: BTreeMap<String, u64>,
    bodies: BTreeMap<String, u64>,
    first_failure: Option<Duration>,
    last_failure: Option<Duration>,
}

/// A running load; `finish` stops it and returns the report. Dropping it
/// stops the workers too.
pub struct Load {
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(config: LoadConfig) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::default());
        let started = Instant::now();
        let workers = config.workers.max(1);
        let period = Duration::from_secs_f64(workers as f64 / config.rate.max(1.0));
        let tasks = (0..workers)
            .map(|i| {
                let (stop, shared, config) = (stop.clone(), shared.clone(), config.clone());
                tokio::spawn(async move {
                    // Spread the workers over one period.
                    tokio::time::sleep(period.mul_f64(i as f64 / workers as f64)).await;
                    let mut tick = tokio::time::interval(period);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tick.tick().await;
                        if stop.load(Ordering::Relaxed)
                            || started.elapsed() >= config.max_duration
                            || shared.sent.fetch_add(1, Ordering::Relaxed) >= config.max_requests
                        {
                            break;
                        }
                        let outcome = one_request(&config).await;
                        let mut tally = shared.tally.lock().unwrap();
                        match outcome {
                            Ok(body) => {
                                shared.ok.fetch_add(1, Ordering::Relaxed);
                                *tally.bodies.entry(body).or_default() += 1;
                            }
                            Err(kind) => {
                                let at = started.elapsed();
                                tally.first_failure.get_or_insert(at);
                                tally.last_failure = Some(at);
                                *tally.failures.entry(kind).or_default() += 1;
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            shared,
            started,
            tasks,
        }
    }

    /// Requests answered so far.
    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// Stops the workers now and returns the report.
    pub async fn finish(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        self.finish_when_done().await
    }

    /// Waits for the workers to reach their count or time bound.
    pub async fn finish_when_done(mut self) -> LoadReport {
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        let elapsed = self.started.elapsed();
        let tally = self.shared.tally.lock().unwrap();
        let ok = self.shared.ok.load(Ordering::Relaxed);
        let failed: u64 = tally.failures.values().sum();
        LoadReport {
            sent: ok + failed,
            ok,
            failures: tally.failures.clone(),
            bodies: tally.bodies.clone(),
            elapsed,
            failure_window: tally.first_failure.zip(tally.last_failure),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One GET over a new connection: the trimmed body, or the failure kind.
async fn one_request(config: &LoadConfig) -> Result<String, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", config.port))
            .await
            .map_err(|e| format!("connect: {}", e.kind()))?;
        let request = format!("GET {} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", config.path);
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {}", e.kind()))?;
        let mut raw = Vec::new();
        (&mut stream)
            .take(1 << 20)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| format!("read: {}", e.kind()))?;
        Ok::<Vec<u8>, String>(raw)
    };
    let raw = tokio::time::timeout(config.request_timeout, exchange)
        .await
        .map_err(|_| "timeout".to_string())??;
    parse_response(&raw)
}

/// Status 200 and a body as long as its Content-Length, or the failure kind.
pub fn parse_response(raw: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(if raw.is_empty() {
            "empty answer".to_string()
        } else {
            "truncated head".to_string()
        });
    };
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    if status != "200" {
        return Err(format!("status {status}"));
    }
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    if let Some(length) = length {
        if body.len() < length {
            return Err("truncated body".to_string());
        }
    }
    Ok(body.trim().to_string())
}
