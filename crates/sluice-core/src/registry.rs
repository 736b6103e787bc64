//! Connector names → factories. The engine looks connectors up here when a
//! `CREATE SOURCE` / `CREATE SINK` names one.
//!
//! ```
//! use sluice_core::registry::ConnectorRegistry;
//! let r = ConnectorRegistry::with_builtins();
//! assert!(r.source("queue").is_ok());
//! assert!(r.source("nope").err().unwrap().to_string().contains("known source connectors: 'queue'"));
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Result, SluiceError};
use crate::queue::QueueSourceFactory;
use crate::sink::{SinkFactory, SinkFactoryRef};
use crate::source::{SourceFactory, SourceFactoryRef};

#[derive(Clone, Default)]
pub struct ConnectorRegistry {
    sources: BTreeMap<&'static str, SourceFactoryRef>,
    sinks: BTreeMap<&'static str, SinkFactoryRef>,
}

impl ConnectorRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The connectors the core itself provides (`queue`).
    pub fn with_builtins() -> Self {
        let mut r = Self::new();
        r.register_source(Arc::new(QueueSourceFactory));
        r
    }

    pub fn register_source(&mut self, factory: Arc<dyn SourceFactory>) {
        self.sources.insert(factory.name(), factory);
    }

    pub fn register_sink(&mut self, factory: Arc<dyn SinkFactory>) {
        self.sinks.insert(factory.name(), factory);
    }

    pub fn source(&self, name: &str) -> Result<SourceFactoryRef> {
        self.sources.get(name).cloned().ok_or_else(|| {
            SluiceError::Config(format!(
                "unknown source connector '{name}'; known source connectors: {}",
                quoted(self.sources.keys())
            ))
        })
    }

    pub fn sink(&self, name: &str) -> Result<SinkFactoryRef> {
        self.sinks.get(name).cloned().ok_or_else(|| {
            SluiceError::Config(format!(
                "unknown sink connector '{name}'; known sink connectors: {}",
                quoted(self.sinks.keys())
            ))
        })
    }

    pub fn source_names(&self) -> Vec<&'static str> {
        self.sources.keys().copied().collect()
    }

    pub fn sink_names(&self) -> Vec<&'static str> {
        self.sinks.keys().copied().collect()
    }

    /// Every option key any connector takes (for completion).
    pub fn option_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self
            .sources
            .values()
            .flat_map(|f| f.option_names().iter().copied())
            .chain(
                self.sinks
                    .values()
                    .flat_map(|f| f.option_names().iter().copied()),
            )
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

fn quoted<'a>(names: impl Iterator<Item = &'a &'static str>) -> String {
    names
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
