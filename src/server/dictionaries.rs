//! The server's side of trained dictionaries: the `velo-dict-*` parameters (docs/compat.md) applied to
//! the engine's family rules and sampler settings, and the background trainer started when training is on.
//! Sampling and training themselves live in `engine::train`; nothing here runs per request.

use std::sync::atomic::Ordering;

use crate::config::params::Values;
use crate::engine::family::FamilyRules;
use crate::engine::Engine;

/// Applies the `velo-dict-*` parameters (at start-up and after CONFIG SET).
pub fn apply(engine: &Engine, params: &Values) {
    let map = engine.dictionaries();
    let rules = FamilyRules {
        separators: params.get("velo-dict-separators").unwrap_or(":").as_bytes().to_vec(),
        prefixes: FamilyRules::parse_prefixes(params.get("velo-dict-prefixes").unwrap_or("")),
    };
    if map.rules() != rules {
        map.set_rules(rules);
    }
    let settings = &map.sampler().settings;
    settings.min_samples.store(params.uint("velo-dict-min-samples"), Ordering::Relaxed);
    settings.dict_size.store(params.uint("velo-dict-size"), Ordering::Relaxed);
    settings.min_gain_pct.store(params.int("velo-dict-min-gain"), Ordering::Relaxed);
    settings.retrain_secs.store(params.uint("velo-dict-retrain-seconds"), Ordering::Relaxed);
    let training = params.flag("velo-dict-training");
    settings.enabled.store(training, Ordering::Relaxed);
    if training {
        engine.start_dictionary_training();
    }
}
