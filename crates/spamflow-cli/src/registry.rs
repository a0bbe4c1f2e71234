//! `spamflow models`: the model registry (versioned model files and a pointer to the serving
//! one) that `spamflow run --model-registry` follows.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use spamflow_registry::Registry;

/// Arguments of `spamflow models`.
#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// Registry folder.
    #[arg(long, env = "SPAMFLOW_MODEL_REGISTRY", default_value = "registry")]
    registry: PathBuf,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List registered models, oldest first; `*` marks the serving one.
    List,
    /// Verify a model file and register it under its model id.
    Add {
        /// Model file.
        model: PathBuf,
        /// Also make it the serving model.
        #[arg(long)]
        promote: bool,
    },
    /// Make a registered model (id or unique id prefix) the serving one.
    Promote {
        /// Model id or unique prefix.
        id: String,
    },
    /// Serve the model that served before the last promotion again.
    Rollback,
}

pub fn run(args: &ModelsArgs) -> anyhow::Result<()> {
    let registry = Registry::new(&args.registry);
    let mut out = std::io::stdout().lock();
    match &args.action {
        Action::List => {
            let current = registry.current()?;
            let history = registry.history()?;
            writeln!(
                out,
                "  {:<18} {:<21} {:<12} {:>8} {:>10} {:>8} {:<18} promoted",
                "id", "created", "algorithm", "messages", "CV 1-AUC%", "MB", "parent"
            )?;
            for model in registry.list()? {
                let m = &model.metadata;
                let promoted = history
                    .iter()
                    .rev()
                    .find(|p| p.id == model.id)
                    .map_or("-", |p| p.at.as_str());
                writeln!(
                    out,
                    "{} {:<18} {:<21} {:<12} {:>8} {:>10.4} {:>8.2} {:<18} {}",
                    if current.as_deref() == Some(model.id.as_str()) {
                        '*'
                    } else {
                        ' '
                    },
                    model.id,
                    m.created_at,
                    m.algorithm,
                    m.training_data.messages,
                    (1.0 - m.validation.roc_auc) * 100.0,
                    model.size as f64 / 1e6,
                    m.parent_model_id.as_deref().unwrap_or("-"),
                    promoted
                )?;
            }
        }
        Action::Add { model, promote } => {
            let bytes = std::fs::read(model)
                .with_context(|| format!("cannot read model file {}", model.display()))?;
            let added = registry
                .add(&bytes)
                .with_context(|| format!("cannot register {}", model.display()))?;
            writeln!(out, "registered {} as {}", added.id, added.path.display())?;
            if *promote {
                report_switch(&mut out, &registry.promote(&added.id)?)?;
            }
        }
        Action::Promote { id } => report_switch(&mut out, &registry.promote(id)?)?,
        Action::Rollback => report_switch(&mut out, &registry.rollback()?)?,
    }
    Ok(())
}

fn report_switch(out: &mut dyn Write, switch: &spamflow_registry::Switch) -> anyhow::Result<()> {
    match &switch.previous {
        Some(previous) if *previous == switch.current => {
            writeln!(out, "{} already serves", switch.current)?
        }
        Some(previous) => writeln!(out, "serving {} (was {previous})", switch.current)?,
        None => writeln!(out, "serving {}", switch.current)?,
    }
    Ok(())
}
