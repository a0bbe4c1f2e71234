//! Fault test on the real broker: 20,000 messages over 6 partitions, published steadily over
//! about 70 s while the consumer is killed with SIGKILL at random moments and restarted, and the
//! group is scaled to two consumers and back. Every fault lands while input still flows.
//! Exactly-once: every input key exactly once in the committed output. At-least-once: none
//! missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use spamflow_e2e::*;

const MESSAGES: usize = 20_000;

/// Input: the corpus' messages cycled to `MESSAGES` records with unique keys `m-<n>`.
fn input_records() -> Vec<(String, Option<Vec<u8>>)> {
    let mut files = split_files("train");
    files.extend(split_files("test"));
    let bodies: Vec<Vec<u8>> = files
        .iter()
        .map(|(_, f)| std::fs::read(f).unwrap())
        .collect();
    (0..MESSAGES)
        .map(|i| (format!("m-{i}"), Some(bodies[i % bodies.len()].clone())))
        .collect()
}

/// A small deterministic generator for kill moments (no extra crate for a test).
struct Moments(u64);

impl Moments {
    fn next_millis(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

/// The settings of one consumer of the fault test: fast failure detection, a stable
/// transactional id per consumer slot.
fn fault_settings(group: &str, name: &str, delivery: &str) -> String {
    format!(
        r#"group = "{group}"
delivery = "{delivery}"
transactional_id = "{group}-{name}"
http_listen = ""
batch_max_messages = 250
[consumer]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
[producer]
"transaction.timeout.ms" = "15000""#
    )
}

/// Waits until the log file holds `text` (at most a minute).
fn wait_for_log(path: &std::path::Path, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(path).is_ok_and(|log| log.contains(text)) {
        assert!(
            Instant::now() < deadline,
            "{} never logged {text:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The two fault tests run one after the other: each wants the machine's cores to itself.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the fault schedule and returns how often each input key appears in the output.
fn run_with_faults(delivery: &str, seed: u64) -> HashMap<String, usize> {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (input, output, dead) = (
        unique("fault-in"),
        unique("fault-out"),
        unique("fault-dead"),
    );
    let group = unique("fault-group");
    create_topics(&[(&input, 6), (&output, 6), (&dead, 1)]);
    let records = input_records();
    let feeder = {
        let input = input.clone();
        std::thread::spawn(move || produce_paced(&input, records, Some(MESSAGES as f64 / 70.0)))
    };
    let dir = tempfile::tempdir().unwrap();
    let topics = (input.as_str(), output.as_str(), dead.as_str());
    let a = run_config(
        dir.path(),
        "a",
        topics,
        &fault_settings(&group, "a", delivery),
    );
    let b = run_config(
        dir.path(),
        "b",
        topics,
        &fault_settings(&group, "b", delivery),
    );
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    let mut moments = Moments(seed);

    // Three SIGKILLs of the only consumer at random moments, each followed by a restart.
    let mut first = Service::start(&a, &[], &log("a0"));
    for round in 1..=3 {
        // Kill a member that owns partitions and is mid-stream, not one still joining.
        wait_for_log(&log(&format!("a{}", round - 1)), "partitions assigned");
        std::thread::sleep(Duration::from_millis(moments.next_millis(1_000, 4_000)));
        assert!(first.running(), "consumer died before kill {round}");
        first.signal("KILL");
        drop(first);
        first = Service::start(&a, &[], &log(&format!("a{round}")));
    }
    // Scale to two consumers (a rebalance), then back to one (another rebalance).
    std::thread::sleep(Duration::from_millis(moments.next_millis(1_000, 4_000)));
    let second = Service::start(&b, &[], &log("b"));
    std::thread::sleep(Duration::from_millis(moments.next_millis(8_000, 12_000)));
    second.signal("TERM");
    let (ok, _) = second.wait(Duration::from_secs(60));
    assert!(ok, "the second consumer did not shut down cleanly");
    assert!(
        !feeder.is_finished(),
        "every fault must land while input still flows"
    );
    feeder.join().unwrap();
    // Stop the remaining consumer gracefully, then drain what is left with a fresh one.
    first.signal("TERM");
    let (ok, _) = first.wait(Duration::from_secs(60));
    assert!(ok, "graceful shutdown failed");
    let last = Service::start(&a, &["--until-idle", "10"], &log("final"));
    let (ok, _) = last.wait(Duration::from_secs(600));
    assert!(
        ok,
        "{}",
        std::fs::read_to_string(log("final")).unwrap_or_default()
    );

    let mut seen: HashMap<String, usize> = HashMap::new();
    for record in read_committed(&output) {
        *seen
            .entry(String::from_utf8(record.key.unwrap()).unwrap())
            .or_default() += 1;
    }
    seen
}

fn missing(seen: &HashMap<String, usize>) -> usize {
    (0..MESSAGES)
        .filter(|i| !seen.contains_key(&format!("m-{i}")))
        .count()
}

#[test]
fn exactly_once_survives_kills_and_rebalances() {
    let started = Instant::now();
    let seen = run_with_faults("exactly_once", 0x5eed_0001);
    let duplicated = seen.values().filter(|&&n| n > 1).count();
    eprintln!(
        "exactly-once: {} keys, {} missing, {} duplicated, {:.0} s",
        seen.len(),
        missing(&seen),
        duplicated,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(missing(&seen), 0);
    assert_eq!(duplicated, 0);
    assert_eq!(seen.len(), MESSAGES);
}

#[test]
fn at_least_once_loses_nothing_under_kills_and_rebalances() {
    let started = Instant::now();
    let seen = run_with_faults("at_least_once", 0x5eed_0002);
    let duplicated = seen.values().filter(|&&n| n > 1).count();
    eprintln!(
        "at-least-once: {} keys, {} missing, {} repeated, {:.0} s",
        seen.len(),
        missing(&seen),
        duplicated,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(missing(&seen), 0);
}
