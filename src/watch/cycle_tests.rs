use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use super::*;
use crate::journal::{Journal, Locks, Silent};
use crate::runtime::fake::{FakeContainer, FakeRuntime, Op};

/// An idle container at the policy's floors, or a failed read on demand.
#[derive(Default)]
struct Idle {
    fail: AtomicBool,
}

#[async_trait]
impl UsageSource for Idle {
    fn name(&self) -> &'static str {
        "idle"
    }

    async fn read(&self, containers: &[Managed]) -> Samples {
        let fail = self.fail.load(Ordering::SeqCst);
        containers
            .iter()
            .map(|c| {
                let s = if fail {
                    Err("gone".to_string())
                } else {
                    Ok(Sample {
                        read_at: Utc::now(),
                        cpu: Cpu::Rate(0.0),
                        cpu_limit: 0.1,
                        memory_used: 1 << 20,
                        memory_limit: 64 << 20,
                        oom_kills: 0,
                    })
                };
                (c.container_id.clone(), s)
            })
            .collect()
    }
}

fn ignore(_: &Row) {}

struct Setup {
    dir: tempfile::TempDir,
    runtime: FakeRuntime,
    journal: Journal,
    locks: Locks,
    source: Idle,
    cfg: WatchConfig,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let runtime = FakeRuntime::new();
    runtime.add(FakeContainer::serving(
        "p-web-1",
        &[
            (crate::runtime::COMPOSE_PROJECT, "p"),
            (crate::runtime::COMPOSE_SERVICE, "web"),
        ],
    ));
    Setup {
        journal: Journal::new(dir.path().join("journal.jsonl")),
        locks: Locks::new(dir.path(), "tuner watch"),
        dir,
        runtime,
        source: Idle::default(),
        cfg: WatchConfig::default(),
    }
}

impl Setup {
    fn watch(&self) -> Watch<'_> {
        Watch {
            cfg: &self.cfg,
            runtime: &self.runtime,
            source: &self.source,
            applier: Applier {
                runtime: &self.runtime,
                journal: &self.journal,
                locks: &self.locks,
                compose_dir: None,
                changelog: self.dir.path().join("CHANGELOG_TUNING.md"),
            },
            state_path: self.dir.path().join("watch-state.json"),
            project: Some("p".into()),
            dry_run: false,
            blue_green: None,
            events: &Silent,
            decided: &ignore,
            memo: Memo::default(),
        }
    }

    fn lists(&self) -> usize {
        self.runtime
            .calls()
            .iter()
            .filter(|(op, _)| *op == Op::List)
            .count()
    }

    /// The state file's inode: every write replaces the file.
    fn state_inode(&self) -> u64 {
        std::fs::metadata(self.dir.path().join("watch-state.json"))
            .unwrap()
            .ino()
    }
}

#[tokio::test]
async fn checks_reuse_the_list_until_a_read_fails() {
    let s = setup();
    let watch = s.watch();
    let mut state = WatchState::default();
    let (_trigger, shutdown) = Shutdown::new();
    watch.check(&mut state, &shutdown).await.unwrap();
    watch.check(&mut state, &shutdown).await.unwrap();
    assert_eq!(s.lists(), 1, "the second check listed again");
    s.source.fail.store(true, Ordering::SeqCst);
    let report = watch.check(&mut state, &shutdown).await.unwrap();
    assert_eq!(report.rows[0].error.as_deref(), Some("gone"));
    s.source.fail.store(false, Ordering::SeqCst);
    watch.check(&mut state, &shutdown).await.unwrap();
    assert_eq!(s.lists(), 2, "a failed read must list afresh");
}

#[tokio::test]
async fn a_service_idling_at_its_floors_is_not_rewritten_every_check() {
    let s = setup();
    let watch = s.watch();
    let mut state = WatchState::default();
    let (_trigger, shutdown) = Shutdown::new();
    let mut inodes = Vec::new();
    for _ in 0..5 {
        let report = watch.check(&mut state, &shutdown).await.unwrap();
        assert!(
            matches!(report.rows[0].decision, Some(Decision::Hold { .. })),
            "{report:?}"
        );
        inodes.push(s.state_inode());
    }
    // The low streaks count to `checks` (3) and stop: from then on only
    // the words of the decision change, which waits for `REFRESH`.
    assert_eq!(state.services["web"].cpu.low, 3);
    assert_ne!(inodes[1], inodes[2], "a streak that moves is written");
    assert_eq!(inodes[2], inodes[4], "rewritten with nothing new");
}

#[test]
fn only_more_than_the_counter_and_the_words_is_worth_a_write() {
    let now = Instant::now();
    let mut state = WatchState::default();
    state.services.insert("web".into(), ServiceState::default());
    assert!(worth_saving(None, &state, now));
    let written = (now, state.clone());
    let web = state.services.get_mut("web").unwrap();
    web.last_cpu = Some((1.0, Utc::now()));
    web.last_decision = "hold".into();
    assert!(!worth_saving(Some(&written), &state, now));
    assert!(worth_saving(Some(&written), &state, now + REFRESH));
    state.services.get_mut("web").unwrap().cpu.high = 1;
    assert!(worth_saving(Some(&written), &state, now));
    state.services.insert("api".into(), ServiceState::default());
    assert!(worth_saving(Some(&written), &state, now));
}
