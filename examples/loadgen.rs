//! The demo stack's writer app: a steady stream of small write transactions
//! against PostgreSQL, with their latency exported for Prometheus.
//!
//! Each transaction inserts `--batch-size` event rows and moves an account
//! balance, the shape of an event-sourcing service. The rate, the number of
//! connections and the batch size are the knobs `tuner` turns through the
//! environment (`LOADGEN_RATE`, `LOADGEN_CONCURRENCY`, `BATCH_SIZE`).
//!
//! Postgres restarts are expected (tuning restarts it), so every worker
//! reconnects with backoff instead of exiting. As a service it runs until
//! SIGTERM; tests bound it with `--duration` or `--max-transactions`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_postgres::{Client, NoTls};
use tracing::{debug, info, warn};

#[derive(Parser, Debug, Clone)]
#[command(about = "Demo write load for the tuner stack; exports /metrics")]
struct Args {
    /// PostgreSQL connection string (URL or key=value form).
    #[arg(long, env = "LOADGEN_DSN")]
    dsn: String,

    /// Target transactions per second across all connections; 0 = as fast as possible.
    #[arg(long, env = "LOADGEN_RATE", default_value_t = 50.0)]
    rate: f64,

    /// Target event rows per second instead of transactions: when > 0 the
    /// transaction rate becomes row-rate / batch-size, so a larger batch
    /// means fewer, bigger transactions for the same data (seed 000's
    /// `batch_size` lever). Overrides --rate.
    #[arg(long, env = "LOADGEN_ROW_RATE", default_value_t = 0.0)]
    row_rate: f64,

    /// Number of connections, each running one transaction at a time.
    #[arg(long, env = "LOADGEN_CONCURRENCY", default_value_t = 4)]
    concurrency: usize,

    /// Event rows inserted per transaction.
    #[arg(long, env = "BATCH_SIZE", default_value_t = 20)]
    batch_size: u32,

    /// Number of account rows the transactions update.
    #[arg(long, env = "LOADGEN_ACCOUNTS", default_value_t = 1000)]
    accounts: i32,

    /// Keep at most about this many event rows; older ones are deleted.
    #[arg(long, env = "LOADGEN_RETAIN_ROWS", default_value_t = 200_000)]
    retain_rows: i64,

    /// Address of the Prometheus /metrics endpoint.
    #[arg(long, env = "LOADGEN_LISTEN", default_value = "0.0.0.0:8000")]
    listen: String,

    /// Stop after this long (e.g. `30s`, `5m`); runs until SIGTERM if absent.
    #[arg(long, env = "LOADGEN_DURATION", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,

    /// Stop after this many transactions have been attempted.
    #[arg(long, env = "LOADGEN_MAX_TRANSACTIONS")]
    max_transactions: Option<u64>,

    /// Give up on a transaction that takes longer than this.
    #[arg(long, env = "LOADGEN_TX_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    tx_timeout: Duration,
}

/// Upper bounds in milliseconds, as in seed 000's latency histogram.
const BUCKETS_MS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

/// Event payload size: large enough that WAL volume reacts to batch size.
const PAYLOAD_BYTES: usize = 160;

#[derive(Default)]
struct Stats {
    buckets: [AtomicU64; BUCKETS_MS.len()],
    latency_count: AtomicU64,
    /// Sum in microseconds, so it stays an integer atomic.
    latency_sum_us: AtomicU64,
    committed: AtomicU64,
    failed: AtomicU64,
    rows: AtomicU64,
    trimmed: AtomicU64,
    connects: AtomicU64,
    connect_failures: AtomicU64,
    connected: AtomicU64,
    attempted: AtomicU64,
}

impl Stats {
    fn observe(&self, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        // Buckets are stored non-cumulatively and summed when rendered.
        if let Some(i) = BUCKETS_MS.iter().position(|&b| ms <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Approximate p95 from the buckets, for the exit summary only.
    fn p95_ms(&self) -> Option<f64> {
        let total = self.latency_count.load(Ordering::Relaxed);
        if total == 0 {
            return None;
        }
        let target = (total as f64 * 0.95).ceil() as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= target {
                return Some(BUCKETS_MS[i]);
            }
        }
        Some(f64::INFINITY)
    }

    fn render(&self, args: &Args) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(4096);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP loadgen_write_latency_ms Latency of one write transaction, BEGIN to COMMIT, in milliseconds."
        );
        let _ = writeln!(out, "# TYPE loadgen_write_latency_ms histogram");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_MS.iter().enumerate() {
            cumulative += get(&self.buckets[i]);
            let _ = writeln!(
                out,
                "loadgen_write_latency_ms_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(
            out,
            "loadgen_write_latency_ms_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "loadgen_write_latency_ms_sum {}",
            get(&self.latency_sum_us) as f64 / 1000.0
        );
        let _ = writeln!(out, "loadgen_write_latency_ms_count {count}");

        let counters: [(&str, &str, &AtomicU64); 6] = [
            (
                "loadgen_transactions_committed_total",
                "Write transactions committed.",
                &self.committed,
            ),
            (
                "loadgen_transactions_failed_total",
                "Write transactions that failed or timed out.",
                &self.failed,
            ),
            (
                "loadgen_rows_written_total",
                "Event rows inserted by committed transactions.",
                &self.rows,
            ),
            (
                "loadgen_rows_trimmed_total",
                "Old event rows deleted to bound the table.",
                &self.trimmed,
            ),
            (
                "loadgen_connects_total",
                "Successful connections to PostgreSQL.",
                &self.connects,
            ),
            (
                "loadgen_connect_failures_total",
                "Failed connection attempts to PostgreSQL.",
                &self.connect_failures,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                get(value)
            );
        }
        let gauges: [(&str, &str, f64); 5] = [
            (
                "loadgen_connected_workers",
                "Workers currently holding a connection.",
                get(&self.connected) as f64,
            ),
            (
                "loadgen_target_rate",
                "Target transactions per second (0 = unlimited).",
                args.rate,
            ),
            (
                "loadgen_target_row_rate",
                "Target event rows per second (0 = set by the transaction rate).",
                args.row_rate,
            ),
            (
                "loadgen_concurrency",
                "Configured number of connections.",
                args.concurrency as f64,
            ),
            (
                "loadgen_batch_size",
                "Configured event rows per transaction.",
                args.batch_size as f64,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

/// Shared state of one run.
struct Run {
    args: Args,
    stats: Stats,
    pg_config: tokio_postgres::Config,
    /// Hands out one permit per transaction at the target rate.
    pacer: Option<Semaphore>,
    stop: watch::Receiver<bool>,
    schema_ready: AtomicBool,
}

impl Run {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps, returning early (false) when the run is stopping.
    async fn sleep(&self, d: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.stopping(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// Claims the right to start one more transaction, honouring `--max-transactions`.
    fn claim(&self) -> bool {
        let n = self.stats.attempted.fetch_add(1, Ordering::Relaxed);
        self.args.max_transactions.is_none_or(|max| n < max)
    }
}

/// tokio-postgres' Display says only "db error"; the server's message is the useful part.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    // "error connecting to server" alone does not say why; the sources do.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn connect(run: &Run) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = run.pg_config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            debug!("connection closed: {e}");
        }
    });
    Ok(client)
}

/// Connects with capped exponential backoff; `None` when the run stops first.
async fn connect_with_backoff(run: &Run, worker: usize) -> Option<Client> {
    let mut delay = Duration::from_millis(100);
    let mut logged = false;
    loop {
        if run.stopping() {
            return None;
        }
        match connect(run).await {
            Ok(client) => {
                run.stats.connects.fetch_add(1, Ordering::Relaxed);
                if logged {
                    info!(worker, "reconnected");
                }
                return Some(client);
            }
            Err(e) => {
                run.stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                // One line per outage, not one per attempt.
                if !logged {
                    warn!(
                        worker,
                        "cannot connect to PostgreSQL, retrying with backoff: {}",
                        describe(&e)
                    );
                    logged = true;
                }
                if !run.sleep(delay).await {
                    return None;
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS loadgen_accounts (
    id         integer PRIMARY KEY,
    balance    bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS loadgen_events (
    id         bigserial PRIMARY KEY,
    account_id integer NOT NULL,
    amount     bigint NOT NULL,
    payload    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);";

/// Creates the tables once per run. Concurrent `CREATE TABLE IF NOT EXISTS`
/// can still collide in the catalog, so the workers serialise on this.
async fn ensure_schema(
    run: &Run,
    client: &Client,
    lock: &tokio::sync::Mutex<()>,
) -> Result<(), tokio_postgres::Error> {
    if run.schema_ready.load(Ordering::Acquire) {
        return Ok(());
    }
    let _guard = lock.lock().await;
    if run.schema_ready.load(Ordering::Acquire) {
        return Ok(());
    }
    client.batch_execute(SCHEMA).await?;
    client
        .execute(
            "INSERT INTO loadgen_accounts (id) SELECT g FROM generate_series(1, $1::int) g ON CONFLICT (id) DO NOTHING",
            &[&run.args.accounts],
        )
        .await?;
    run.schema_ready.store(true, Ordering::Release);
    info!(accounts = run.args.accounts, "schema ready");
    Ok(())
}

/// One write transaction: a batch of events plus the balance they move.
async fn write_once(client: &mut Client, run: &Run, seq: u64) -> Result<(), tokio_postgres::Error> {
    // Scatter accounts over the whole table, as real traffic does: each
    // checkpoint cycle then touches many distinct pages, and the first change
    // to each page after a checkpoint writes a full-page image. That is what
    // makes WAL volume depend on checkpoint spacing (REFERENCE.md).
    let account = (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16) % run.args.accounts.max(1) as u64;
    let account = account as i32 + 1;
    let amount = (seq % 97) as i64 - 48;
    let rows = run.args.batch_size as i32;
    let payload = payload(seq);
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO loadgen_events (account_id, amount, payload) \
         SELECT $1::int, $2::bigint, $3::text || g::text FROM generate_series(1, $4::int) g",
        &[&account, &amount, &payload, &rows],
    )
    .await?;
    tx.execute(
        "UPDATE loadgen_accounts SET balance = balance + $2::bigint * $3::int, updated_at = now() \
         WHERE id = $1::int",
        &[&account, &amount, &rows],
    )
    .await?;
    tx.commit().await
}

/// Cheap varied text; it does not need to be random, only not constant.
fn payload(seq: u64) -> String {
    let mut s = String::with_capacity(PAYLOAD_BYTES + 8);
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while s.len() < PAYLOAD_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{x:016x}"));
    }
    s.truncate(PAYLOAD_BYTES);
    s.push('-');
    s
}

async fn worker(run: Arc<Run>, id: usize, schema_lock: Arc<tokio::sync::Mutex<()>>) {
    let mut seq = id as u64;
    'connect: while let Some(mut client) = connect_with_backoff(&run, id).await {
        if let Err(e) = ensure_schema(&run, &client, &schema_lock).await {
            warn!(
                worker = id,
                "cannot create the demo tables: {}",
                describe(&e)
            );
            if !run.sleep(Duration::from_secs(1)).await {
                return;
            }
            continue;
        }
        run.stats.connected.fetch_add(1, Ordering::Relaxed);
        // Only the first failure of a streak is logged, so an outage is one line.
        let mut failing = false;
        loop {
            if let Some(pacer) = &run.pacer {
                let mut stop = run.stop.clone();
                tokio::select! {
                    permit = pacer.acquire() => match permit {
                        Ok(p) => p.forget(),
                        Err(_) => break,
                    },
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            if run.stopping() || !run.claim() {
                break;
            }
            seq += run.args.concurrency as u64;
            let started = Instant::now();
            let result =
                tokio::time::timeout(run.args.tx_timeout, write_once(&mut client, &run, seq)).await;
            match result {
                Ok(Ok(())) => {
                    if failing {
                        info!(worker = id, "transactions succeed again");
                        failing = false;
                    }
                    run.stats.observe(started.elapsed());
                    run.stats.committed.fetch_add(1, Ordering::Relaxed);
                    run.stats
                        .rows
                        .fetch_add(u64::from(run.args.batch_size), Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    run.stats.failed.fetch_add(1, Ordering::Relaxed);
                    if client.is_closed() {
                        warn!(worker = id, "connection lost: {}", describe(&e));
                        run.stats.connected.fetch_sub(1, Ordering::Relaxed);
                        continue 'connect;
                    }
                    if !failing {
                        warn!(worker = id, "transaction failed: {}", describe(&e));
                        failing = true;
                    }
                }
                Err(_) => {
                    // The session may be stuck mid-transaction; start clean.
                    run.stats.failed.fetch_add(1, Ordering::Relaxed);
                    warn!(worker = id, timeout = ?run.args.tx_timeout, "transaction timed out; reconnecting");
                    run.stats.connected.fetch_sub(1, Ordering::Relaxed);
                    continue 'connect;
                }
            }
        }
        run.stats.connected.fetch_sub(1, Ordering::Relaxed);
        return;
    }
}

/// Adds permits at the target rate; at most one second's worth can pile up,
/// so a stall (Postgres restart) is not followed by an unbounded burst.
async fn pace(run: Arc<Run>) {
    let Some(pacer) = &run.pacer else { return };
    let cap = (run.args.rate.ceil() as usize).max(run.args.concurrency);
    let tick = Duration::from_millis(10);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    let mut credit = 0.0f64;
    let mut stop = run.stop.clone();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|s| *s) => { pacer.close(); return; }
        }
        let now = Instant::now();
        credit += run.args.rate * now.duration_since(last).as_secs_f64();
        last = now;
        let whole = credit.floor();
        credit -= whole;
        let room = cap.saturating_sub(pacer.available_permits());
        let add = (whole as usize).min(room);
        if add > 0 {
            pacer.add_permits(add);
        }
    }
}

/// Keeps `loadgen_events` near `--retain-rows` rows by deleting by id range,
/// which uses the primary key and needs no extra index.
async fn trim(run: Arc<Run>) {
    let mut client: Option<Client> = None;
    while run.sleep(Duration::from_secs(10)).await {
        if !run.schema_ready.load(Ordering::Acquire) {
            continue;
        }
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            client = connect(&run).await.ok();
        }
        let Some(c) = &client else { continue };
        let deleted = c
            .execute(
                "DELETE FROM loadgen_events WHERE id <= (SELECT max(id) FROM loadgen_events) - $1::bigint",
                &[&run.args.retain_rows],
            )
            .await;
        match deleted {
            Ok(n) => {
                run.stats.trimmed.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => debug!("trim failed: {}", describe(&e)),
        }
    }
}

async fn serve_metrics(listener: TcpListener, run: Arc<Run>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let run = run.clone();
        tokio::spawn(async move {
            if let Err(e) =
                tokio::time::timeout(Duration::from_secs(5), handle_http(stream, &run)).await
            {
                debug!("metrics request timed out: {e}");
            }
        });
    }
}

/// A minimal HTTP/1.0-style responder: one request per connection, GET only.
async fn handle_http(mut stream: TcpStream, run: &Run) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4",
            run.stats.render(&run.args),
        ),
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

fn validate(args: &Args) -> Result<tokio_postgres::Config, String> {
    if !args.rate.is_finite() || args.rate < 0.0 {
        return Err(format!(
            "--rate/LOADGEN_RATE must be >= 0, got {}",
            args.rate
        ));
    }
    if !args.row_rate.is_finite() || args.row_rate < 0.0 {
        return Err(format!(
            "--row-rate/LOADGEN_ROW_RATE must be >= 0, got {}",
            args.row_rate
        ));
    }
    if args.concurrency == 0 || args.concurrency > 1000 {
        return Err(format!(
            "--concurrency/LOADGEN_CONCURRENCY must be 1..=1000, got {}",
            args.concurrency
        ));
    }
    if args.batch_size == 0 || args.batch_size > 100_000 {
        return Err(format!(
            "--batch-size/BATCH_SIZE must be 1..=100000, got {}",
            args.batch_size
        ));
    }
    if args.accounts <= 0 {
        return Err(format!(
            "--accounts/LOADGEN_ACCOUNTS must be > 0, got {}",
            args.accounts
        ));
    }
    // The parse error does not echo the DSN, so the password stays out of logs.
    let mut config: tokio_postgres::Config = args
        .dsn
        .parse()
        .map_err(|e| format!("--dsn/LOADGEN_DSN is not a valid connection string: {e}"))?;
    config.application_name("loadgen");
    config.connect_timeout(Duration::from_secs(5));
    Ok(config)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokio_postgres=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut args = Args::parse();
    let pg_config = match validate(&args) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("loadgen: {msg}");
            return std::process::ExitCode::from(2);
        }
    };
    if args.row_rate > 0.0 {
        args.rate = args.row_rate / f64::from(args.batch_size);
    }
    let listener = match TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "loadgen: cannot listen on {} for /metrics: {e}",
                args.listen
            );
            return std::process::ExitCode::from(1);
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| args.listen.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let run = Arc::new(Run {
        pacer: (args.rate > 0.0).then(|| Semaphore::new(0)),
        args,
        stats: Stats::default(),
        pg_config,
        stop: stop_rx,
        schema_ready: AtomicBool::new(false),
    });
    info!(
        rate = run.args.rate,
        concurrency = run.args.concurrency,
        batch_size = run.args.batch_size,
        metrics = %local,
        "loadgen starting"
    );

    tokio::spawn(serve_metrics(listener, run.clone()));
    tokio::spawn(pace(run.clone()));
    tokio::spawn(trim(run.clone()));
    let schema_lock = Arc::new(tokio::sync::Mutex::new(()));
    let mut workers = tokio::task::JoinSet::new();
    for id in 0..run.args.concurrency {
        workers.spawn(worker(run.clone(), id, schema_lock.clone()));
    }

    let started = Instant::now();
    let deadline = async {
        match run.args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = wait_for_signal() => info!("signal received, stopping"),
        _ = deadline => info!("duration reached, stopping"),
        // All workers finish by themselves only when --max-transactions is used up.
        _ = async { while workers.join_next().await.is_some() {} } => info!("transaction budget used, stopping"),
    }
    let _ = stop_tx.send(true);
    // In-flight transactions get a moment to finish so the counts are honest.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while workers.join_next().await.is_some() {}
    })
    .await;

    let s = &run.stats;
    let secs = started.elapsed().as_secs_f64();
    let committed = s.committed.load(Ordering::Relaxed);
    println!(
        "loadgen: committed={committed} failed={} rows={} seconds={secs:.1} tps={:.1} p95_ms<={}",
        s.failed.load(Ordering::Relaxed),
        s.rows.load(Ordering::Relaxed),
        committed as f64 / secs.max(0.001),
        s.p95_ms()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "n/a".into()),
    );
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Args {
        Args::parse_from(["loadgen", "--dsn", "host=127.0.0.1 user=postgres"])
    }

    #[test]
    fn histogram_is_cumulative_and_counts_every_observation() {
        let stats = Stats::default();
        for ms in [0.5, 3.0, 3.0, 150.0, 9000.0] {
            stats.observe(Duration::from_secs_f64(ms / 1000.0));
        }
        let text = stats.render(&args());
        assert!(text.contains("loadgen_write_latency_ms_bucket{le=\"1\"} 1\n"));
        assert!(text.contains("loadgen_write_latency_ms_bucket{le=\"5\"} 3\n"));
        assert!(text.contains("loadgen_write_latency_ms_bucket{le=\"200\"} 4\n"));
        assert!(text.contains("loadgen_write_latency_ms_bucket{le=\"5000\"} 4\n"));
        assert!(text.contains("loadgen_write_latency_ms_bucket{le=\"+Inf\"} 5\n"));
        assert!(text.contains("loadgen_write_latency_ms_count 5\n"));
        assert!(text.contains("# TYPE loadgen_transactions_committed_total counter"));
    }

    #[test]
    fn p95_is_the_bucket_bound_holding_the_95th_percentile() {
        let stats = Stats::default();
        assert_eq!(stats.p95_ms(), None);
        for _ in 0..95 {
            stats.observe(Duration::from_millis(4));
        }
        for _ in 0..5 {
            stats.observe(Duration::from_millis(400));
        }
        assert_eq!(stats.p95_ms(), Some(5.0));
    }

    #[test]
    fn payload_has_fixed_length_and_varies() {
        assert_eq!(payload(1).len(), PAYLOAD_BYTES + 1);
        assert_ne!(payload(1), payload(2));
    }

    #[test]
    fn validation_names_the_setting_at_fault() {
        let mut a = args();
        a.concurrency = 0;
        assert!(validate(&a).unwrap_err().contains("LOADGEN_CONCURRENCY"));
        let mut a = args();
        a.dsn = "postgresql://[::1".into();
        assert!(validate(&a).unwrap_err().contains("LOADGEN_DSN"));
        assert!(validate(&args()).is_ok());
    }
}
