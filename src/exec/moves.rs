//! The move protocol: a server-side move is journalled (`Moving`) before
//! its request, so that a crash mid-way is completed by the next cycle
//! before it plans; its `after` changes are applied only once it is done.
//! A move whose answer was lost (a reset, a timeout, a 5xx) may have
//! happened: its intent stays, and it is finished before the next move, or
//! by the next cycle, as after a crash. One move is in doubt at a time.

use super::{Executor, settle_limit};
use crate::remote::{self, Error, RemoteFile};
use crate::retry::Poll;
use crate::state::{Change, FileRec, Moving};

impl Executor<'_> {
    pub(super) fn move_to(&mut self, m: Moving) -> Result<(), Error> {
        // A move in doubt already (an earlier try may have done it): a
        // refusal of this try says nothing of that one.
        let again = self.store.state().moving.as_ref() == Some(&m);
        if let Some(was) = self.store.state().moving.clone().filter(|was| *was != m) {
            self.finish_move()?;
            if self.store.state().moving.is_some() {
                return Err(Error::Network(format!("the earlier move {} -> {} is still unanswered", was.from, was.to)));
            }
        }
        self.intent(Change::Moving(Some(m.clone())))?;
        let (src, dst) = (remote::join(&self.cfg.remote_dir, &m.from), remote::join(&self.cfg.remote_dir, &m.to));
        // Files: like an upload, replace what is there. Folders: never
        // clobber a folder someone else has at the destination.
        // A source the Disk does not show may be a fresh upload it is still
        // finalising (R1): asked again for a few seconds before it counts.
        let mut poll = Poll::new(settle_limit(0));
        // Past the move request itself (a check whether an earlier try did
        // it, a merge done piece by piece), a failure leaves it in doubt.
        let mut past = again;
        let result = loop {
            match self.remote.move_to(&src, &dst, !m.dir) {
                // Done already (by an earlier, interrupted run)?
                Err(Error::NotFound) if self.remote.exists(&dst)? => {
                    past = true;
                    break self.done_already(&m, &dst);
                }
                Err(Error::NotFound) if poll.again() => {}
                // The Disk may check the destination before the source: a
                // folder there and none to move may be an earlier try's.
                Err(Error::AlreadyExists) if m.dir && !self.remote.exists(&src)? => {
                    past = true;
                    break self.done_already(&m, &dst);
                }
                // Someone else's folder is there: move into it, piece by piece.
                Err(Error::AlreadyExists) if m.dir => {
                    log::info!("disk:{dst} exists already; moving the contents of {} into it", m.from);
                    past = true;
                    break self.merge_into(&src, &dst);
                }
                other => break other,
            }
        };
        // An upload to a destination that went up under a temporary name
        // which could not be removed: the move's records would forget it.
        if result.is_ok() {
            for c in &m.after {
                if let Change::Put { path, .. } = c
                    && self.store.state().pending.get(path).is_some_and(|p| p.temp.is_some())
                {
                    self.settle_pending(path)?;
                }
            }
        }
        // A moved file keeps its date on the Disk; one whose time changed
        // too (touched, then renamed) gets the new one.
        let mut after = m.after;
        if result.is_ok() && !m.dir {
            let was = self.store.state().files.get(&m.from).map(|r| r.stat.mtime_ns);
            for c in &mut after {
                if let Change::Put { path, rec } = c
                    && *path == m.to
                    && was != Some(rec.stat.mtime_ns)
                    && !self.date(path, &dst, rec.stat.mtime_ns, None)
                {
                    rec.stat.mtime_ns = super::UNDATED;
                }
            }
        }
        let settle = match &result {
            Ok(()) => after.into_iter().chain([Change::Moving(None)]).collect(),
            Err(e) if past && !matches!(e, Error::NotFound | Error::AlreadyExists) || e.may_have_been_done() => return result,
            Err(_) => vec![Change::Moving(None)],
        };
        let _ = self.store.commit(settle);
        result
    }

    /// The source is gone and the destination is there: an earlier try did
    /// this move if the destination holds what it brings (the files its
    /// `after` records, by size and sha256). Anything else (the source was
    /// deleted, a folder was made at the destination) is not this move:
    /// `NotFound`, and the cycle lists the Disk to repair the state.
    fn done_already(&mut self, m: &Moving, dst: &str) -> Result<(), Error> {
        // What it brings, relative to its destination: its `Put`s, and a
        // folder's records still under its old path (`Rekey`).
        let mut brought: Vec<(String, FileRec)> = Vec::new();
        for c in &m.after {
            match c {
                Change::Put { path, rec } => {
                    let rel = path.strip_prefix(&format!("{}/", m.to)).unwrap_or(path);
                    brought.push((rel.to_string(), rec.clone()));
                }
                Change::Rekey { from, .. } => {
                    let below =
                        self.store.state().files_at(from).filter_map(|(k, rec)| Some((k.strip_prefix(from)?.strip_prefix('/')?, rec)));
                    brought.extend(below.map(|(rel, rec)| (rel.to_string(), rec.clone())));
                }
                _ => {}
            }
        }
        let holds = |f: &RemoteFile, rec: &FileRec| f.size == rec.stat.size && f.sha256.is_none_or(|h| h == rec.sha256);
        if !m.dir {
            let shown = self.remote.stat(dst)?;
            let ok = brought.iter().all(|(_, rec)| shown.as_ref().is_some_and(|f| holds(f, rec)));
            return if ok { Ok(()) } else { Err(Error::NotFound) };
        }
        if brought.is_empty() {
            return Ok(());
        }
        let Some(tree) = self.remote.tree(dst)? else { return Err(Error::NotFound) };
        let there = |rel: &str, rec: &FileRec| tree.get(rel).is_some_and(|i| !i.dir && holds(&i.file, rec));
        if brought.iter().all(|(rel, rec)| there(rel, rec)) { Ok(()) } else { Err(Error::NotFound) }
    }

    /// A folder move onto a folder that is already there (someone made it
    /// on the web, or another client did): each entry of `src` is moved
    /// into `dst`, a sub-folder that exists there too the same way, and
    /// `src`, emptied, is deleted. A file of `src` replaces a file at its new
    /// path, as an upload there would (the local folder is the master);
    /// everything else in `dst` stays as it was. One listing per folder
    /// merged, one move per entry.
    fn merge_into(&mut self, src: &str, dst: &str) -> Result<(), Error> {
        let Some(items) = self.remote.list(src)? else { return Err(Error::NotFound) };
        for item in items {
            let (from, to) = (remote::join(src, &item.name), remote::join(dst, &item.name));
            match self.remote.move_to(&from, &to, !item.dir) {
                Err(Error::AlreadyExists) if item.dir => self.merge_into(&from, &to)?,
                other => other?,
            }
        }
        match self.remote.list(src)? {
            Some(left) if left.is_empty() => self.remote.delete(src, true, None),
            _ => Ok(()),
        }
    }

    /// A move that a crash interrupted is finished before anything else: it
    /// may have happened on the server, and the plan must know where things are.
    pub fn finish_move(&mut self) -> Result<(), Error> {
        let Some(m) = self.store.state().moving.clone() else { return Ok(()) };
        log::info!("finishing the interrupted move {} -> {}", m.from, m.to);
        match self.move_to(m) {
            // Neither side has it, or both do: the state stays as it was.
            Err(Error::NotFound | Error::AlreadyExists) => Ok(()),
            other => other,
        }
    }
}
