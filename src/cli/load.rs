//! Resolving and loading models, with a progress bar on a terminal.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use pae_local::model::synthetic::SyntheticSpec;
use pae_local::model::{LoadOptions, LoadProgress, Model};
use pae_local::source;

use super::args::ModelArgs;

/// The prefix of a model spec that names a random-weight model with a real one's shapes
/// (`synthetic:qwen2:7b:q4_k`), made in memory instead of read from a file.
pub const SYNTHETIC: &str = "synthetic:";

/// Resolves `spec` (or the default model) and loads it.
pub fn load_model(args: &ModelArgs, spec: Option<&str>) -> anyhow::Result<Arc<Model>> {
    let spec = spec.or(args.model.as_deref());
    let device = args.device.open()?;
    if let Some(synthetic) = spec.and_then(|s| s.strip_prefix(SYNTHETIC)) {
        let parsed: SyntheticSpec = synthetic.parse()?;
        let model = Model::synthetic(
            &parsed,
            LoadOptions {
                device,
                context: args.ctx,
                progress: None,
            },
        )
        .with_context(|| format!("making the synthetic model `{parsed}`"))?;
        return Ok(Arc::new(model));
    }
    let path = source::resolve(spec)?;
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(format!(
            "loading {}",
            path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        bar
    });
    let mut on_progress = |p: LoadProgress| {
        if let Some(b) = &bar {
            b.set_length(p.total_bytes);
            b.set_position(p.loaded_bytes);
        }
    };
    let model = Model::load(
        &path,
        LoadOptions {
            device,
            context: args.ctx,
            progress: Some(&mut on_progress),
        },
    )
    .with_context(|| format!("loading `{}`", path.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(Arc::new(model))
}
