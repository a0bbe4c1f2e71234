//! Progress bars for training, drawn on stderr with indicatif (hidden when not a terminal).

use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use spamflow_model::TrainProgress;

/// One progress bar per training stage; each finished stage is also logged with its duration.
pub struct Bars {
    current: Mutex<Option<(ProgressBar, String, Instant)>>,
    quiet: Mutex<(usize, Option<gag::Gag>)>,
}

impl Bars {
    /// Bars that draw to stderr.
    pub fn new() -> Self {
        Bars {
            current: Mutex::new(None),
            quiet: Mutex::new((0, None)),
        }
    }

    /// Finishes the last stage's bar.
    pub fn finish(&self) {
        if let Ok(mut current) = self.current.lock() {
            finish_stage(current.take());
        }
    }
}

fn finish_stage(stage: Option<(ProgressBar, String, Instant)>) {
    if let Some((bar, name, started)) = stage {
        bar.finish_and_clear();
        eprintln!(
            "{name:>24}: done in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

impl TrainProgress for Bars {
    fn stage(&self, name: &str, total: u64) {
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        finish_stage(current.take());
        let bar = ProgressBar::new(total).with_message(name.to_owned());
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} {elapsed_precise}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        *current = Some((bar, name.to_owned(), Instant::now()));
    }

    fn advance(&self, steps: u64) {
        if let Ok(current) = self.current.lock()
            && let Some((bar, _, _)) = current.as_ref()
        {
            bar.inc(steps);
        }
    }

    fn quietly(&self, work: &mut dyn FnMut()) {
        // Several threads may be quiet at once; stderr stays redirected until the last is done.
        if let Ok(mut quiet) = self.quiet.lock() {
            quiet.0 += 1;
            if quiet.1.is_none() {
                quiet.1 = gag::Gag::stderr().ok();
            }
        }
        work();
        if let Ok(mut quiet) = self.quiet.lock() {
            quiet.0 -= 1;
            if quiet.0 == 0 {
                quiet.1 = None;
            }
        }
    }
}
