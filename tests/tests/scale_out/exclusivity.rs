//! The processes' account of their commits (see
//! `duroxide_tests::turn_journal`), checked against the stored histories:
//! - each execution's commits, in the order they were sent, advance its
//!   history length one from where the previous left it, from 0 to the
//!   stored length: two commits from the same length, a stale one, or one
//!   the journals do not know, fail;
//! - while a committed turn ran (from when its process got the lock to when
//!   it sent the commit, both inside the time the lock must have been held)
//!   no other lock on its instance was granted, to this process or another
//!   (a grant whose call was made and answered in between): so two turns
//!   that overlap cannot both commit, and a commit that outlived its lock
//!   (someone else got the instance meanwhile) fails.
//!
//! A killed process may have sent a commit without learning its outcome;
//! such an attempt counts as committed exactly where the history needs it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use duroxide_tests::turn_journal::Record;

/// A commit attempt, as a process journaled it.
#[derive(Debug, Clone)]
struct Attempt {
    pid: u32,
    instance: String,
    token: String,
    execution: u64,
    before: u64,
    after: u64,
    start_us: u64,
    sent_us: u64,
}

/// What the journals hold.
#[derive(Debug, Default)]
pub struct Summary {
    /// Commits that succeeded.
    pub committed: usize,
    /// Commits refused (lost locks).
    pub refused: usize,
    /// Commits a killed process sent without learning the outcome, that
    /// the histories show took effect.
    pub unacknowledged: usize,
}

/// Reads every journal in `files`.
pub fn read(files: &[impl AsRef<Path>]) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    for file in files {
        let path = file.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path:?}: {e}"))?;
        for line in text.lines() {
            records.push(serde_json::from_str(line).map_err(|e| format!("{path:?}: {e}: {line}"))?);
        }
    }
    Ok(records)
}

/// Checks `records` against `lengths`, the stored history length of every
/// (instance, execution); only processes in `killed` may leave an attempt
/// without an outcome.
pub fn check(
    records: Vec<Record>,
    lengths: &HashMap<(String, u64), u64>,
    killed: &HashSet<u32>,
) -> Result<Summary, String> {
    let mut attempts: HashMap<(u32, u64), Attempt> = HashMap::new();
    let mut outcomes: HashMap<(u32, u64), bool> = HashMap::new();
    // Every lock granted, by instance: (asked, answered, process, token).
    let mut grants: HashMap<String, Vec<(u64, u64, u32, String)>> = HashMap::new();
    for record in records {
        match record {
            Record::Locked {
                pid,
                instance,
                token,
                asked_us,
                at_us,
            } => grants
                .entry(instance)
                .or_default()
                .push((asked_us, at_us, pid, token)),
            Record::Try {
                pid,
                attempt,
                instance,
                token,
                execution,
                before,
                after,
                start_us,
                sent_us,
            } => {
                let a = Attempt {
                    pid,
                    instance,
                    token,
                    execution,
                    before,
                    after,
                    start_us,
                    sent_us,
                };
                attempts.insert((pid, attempt), a);
            }
            Record::Done { pid, attempt } => {
                outcomes.insert((pid, attempt), true);
            }
            Record::Refused { pid, attempt } => {
                outcomes.insert((pid, attempt), false);
            }
        }
    }
    let mut summary = Summary::default();
    // By (instance, execution): the committed attempts, and those whose
    // outcome nobody learned.
    let mut committed: BTreeMap<(String, u64), Vec<Attempt>> = BTreeMap::new();
    let mut unknown: HashMap<(String, u64), Vec<Attempt>> = HashMap::new();
    for (key, attempt) in attempts {
        let at = (attempt.instance.clone(), attempt.execution);
        match outcomes.get(&key) {
            Some(true) => {
                summary.committed += 1;
                committed.entry(at).or_default().push(attempt);
            }
            Some(false) => summary.refused += 1,
            None if killed.contains(&attempt.pid) => {
                unknown.entry(at).or_default().push(attempt);
            }
            None => {
                return Err(format!(
                    "process {} (never killed) left an attempt without an outcome: {attempt:?}",
                    attempt.pid
                ));
            }
        }
    }
    // Every stored execution, with or without committed attempts.
    for key in lengths.keys() {
        committed.entry(key.clone()).or_default();
    }
    let mut turns: HashMap<String, Vec<Attempt>> = HashMap::new();
    for ((instance, execution), mut chain) in committed {
        let stored = *lengths.get(&(instance.clone(), execution)).ok_or_else(|| {
            format!("{instance} execution {execution} committed turns but has no stored history")
        })?;
        chain.sort_by_key(|a| a.sent_us);
        let mut spares = unknown
            .remove(&(instance.clone(), execution))
            .unwrap_or_default();
        let mut at = 0;
        let mut used = Vec::new();
        for attempt in chain.iter().chain(std::iter::once(&Attempt {
            // A sentinel: the chain must reach the stored length.
            pid: 0,
            instance: instance.clone(),
            token: String::new(),
            execution,
            before: stored,
            after: stored,
            start_us: 0,
            sent_us: 0,
        })) {
            // A gap: only an unacknowledged commit of a killed process may fill it.
            while at < attempt.before {
                let Some(k) = spares.iter().position(|s| s.before == at && s.after > at) else {
                    break;
                };
                let spare = spares.swap_remove(k);
                at = spare.after;
                used.push(spare);
            }
            if attempt.before != at {
                return Err(format!(
                    "{instance} execution {execution}: a commit from history length {} \
                     when the history was at {at} (stored length {stored}): {attempt:?}",
                    attempt.before
                ));
            }
            at = attempt.after;
        }
        summary.unacknowledged += used.len();
        let all = turns.entry(instance).or_default();
        all.extend(chain);
        all.extend(used);
    }
    for (instance, all) in turns {
        let mut granted = grants.remove(&instance).unwrap_or_default();
        granted.sort_unstable();
        for turn in all {
            if turn.start_us == 0 {
                return Err(format!("a commit under a lock nobody journaled: {turn:?}"));
            }
            let during = granted.partition_point(|g| g.0 <= turn.start_us);
            if let Some((asked, at, pid, _)) = granted[during..]
                .iter()
                .take_while(|g| g.0 < turn.sent_us)
                .find(|g| g.1 < turn.sent_us && (g.2 != turn.pid || g.3 != turn.token))
            {
                return Err(format!(
                    "process {pid} got the lock of {instance} between {asked} and {at} µs, \
                     while this turn of process {} ran, which committed: {turn:?}",
                    turn.pid
                ));
            }
        }
    }
    Ok(summary)
}
