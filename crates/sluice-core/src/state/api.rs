//! Spark's keyed-state operations on the embedding API:
//! `map_with_state` (with a [`StateSpec`]), `state_snapshots` and
//! `update_state_by_key`, run by Rust functions ([`super::function`]). For
//! running aggregates, SQL's `GROUP BY ... EMIT CHANGES | EMIT SNAPSHOT` is
//! the columnar, faster path.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use datafusion::prelude::SessionContext;
//! use sluice_core::StreamingContext;
//!
//! let ssc = StreamingContext::new(SessionContext::new(), Duration::from_secs(1));
//! ssc.sql("CREATE SOURCE words (word TEXT) WITH (connector = 'queue');
//!          CREATE STREAM pairs AS SELECT word, 1 AS one FROM words;").await.unwrap();
//! // pairs.updateStateByKey((ones, count) => Some(count.getOrElse(0) + ones.sum))
//! // The key's type is named: the function does not see the key.
//! ssc.update_state_by_key::<String, _, _, _>("counts", "pairs", |ones: &[i64], count: Option<i64>| {
//!     Some(count.unwrap_or(0) + ones.iter().sum::<i64>())
//! })
//! .await
//! .unwrap();
//! # });
//! ```

use super::function::{
    Emits, FunctionStream, InputValue, OutputValue, State, StateKey, StateSpec, StateValue,
};
use crate::context::StreamingContext;
use crate::error::Result;
use crate::stateful::StatefulStream;

impl StreamingContext {
    /// `input.mapWithState(spec)`: stream `name` emits what `spec`'s
    /// function returns for each key that got values this batch (and for
    /// each key timing out). `input`'s first column is the key, the rest the
    /// value.
    pub async fn map_with_state<K, V, S, T>(
        &self,
        name: &str,
        input: &str,
        spec: StateSpec<K, V, S, T>,
    ) -> Result<()>
    where
        K: StateKey,
        V: InputValue,
        S: StateValue,
        T: OutputValue,
    {
        self.function_stream(name, input, spec, Emits::Mapped).await
    }

    /// `input.updateStateByKey(f)`: each batch, `f(values, state)` for every
    /// key (with no values for keys that got none); `None` drops the key.
    /// Stream `name` emits every key and its state after the batch.
    pub async fn update_state_by_key<K, V, S, F>(&self, name: &str, input: &str, f: F) -> Result<()>
    where
        K: StateKey,
        V: InputValue,
        S: StateValue,
        F: Fn(&[V], Option<S>) -> Option<S> + Send + Sync + 'static,
    {
        let spec = StateSpec::function(move |_: &K, values: &[V], state: &mut State<S>| {
            match f(values, state.take()) {
                Some(s) => state.update(s),
                None => state.remove(),
            }
            None::<()>
        });
        self.function_stream(name, input, spec, Emits::Snapshot)
            .await
    }

    /// `stateSnapshots()` of the `map_with_state` stream `of`: stream `name`
    /// emits every key and its state (columns: the key, then the state's),
    /// each batch.
    pub async fn state_snapshots(&self, name: &str, of: &str) -> Result<()> {
        self.check_not_started("create a stream").await?;
        let mut engine = self.engine().lock().await;
        let state = engine
            .streams
            .iter()
            .find(|s| s.name == of)
            .and_then(|s| s.stateful.clone());
        let schema = match &state {
            Some(state) => match &*state.lock().await {
                StatefulStream::Function(f) => Some(f.snapshot_schema()),
                _ => None,
            },
            None => None,
        };
        let (Some(state), Some(schema)) = (state, schema) else {
            return crate::plan_err!(
                "state_snapshots '{name}': '{of}' is not a map_with_state stream"
            );
        };
        engine.add_stateful_stream(
            name,
            StatefulStream::Snapshots {
                of: state,
                input: of.to_string(),
                schema,
            },
            format!("state snapshots of {of}"),
        )
    }

    async fn function_stream<K, V, S, T>(
        &self,
        name: &str,
        input: &str,
        spec: StateSpec<K, V, S, T>,
        emits: Emits,
    ) -> Result<()>
    where
        K: StateKey,
        V: InputValue,
        S: StateValue,
        T: OutputValue,
    {
        self.check_not_started("create a stream").await?;
        let mut engine = self.engine().lock().await;
        let Some((_, input_schema)) = engine.relation(input) else {
            return crate::plan_err!(
                "'{name}' reads '{input}', which is not a source or stream; known: {}",
                engine.relation_names().join(", ")
            );
        };
        let stream = FunctionStream::new(name, input, &input_schema, spec, emits)?;
        engine.add_stateful_stream(
            name,
            StatefulStream::Function(Box::new(stream)),
            format!("Rust function over {input}"),
        )
    }
}
