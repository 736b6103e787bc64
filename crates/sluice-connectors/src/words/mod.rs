//! `connector = 'words'`: the tutorial's `SocketLikeNC` as a source. Every
//! batch has `rows_per_batch` lines (column `value`), each `words_per_line`
//! random words from a vocabulary, joined by spaces.
//!
//! Options: `seed` (default 0; a batch's words depend only on the seed and the
//! batch time, so reruns repeat), `rows_per_batch` (default 10),
//! `words_per_line` (default 2), `vocabulary` (a list of words separated by
//! commas or spaces, or a size N for the words `w0` .. `wN-1`; default the
//! tutorial's 12 words, `Hello` three times among them), `distribution`
//! (`uniform`, the default, or `zipf`), `zipf_exponent` (default 1.0).
//!
//! ```sql
//! CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 200000,
//!                           vocabulary = 100000, distribution = 'zipf');
//! ```

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use sluice_core::source::{Source, SourceContext, SourceFactory, SourceSpec};
use sluice_core::{Result, SluiceError, plan_err};

use crate::replay::text_schema;

/// The vocabulary of the tutorial's `SocketLikeNC`.
pub const TUTORIAL_WORDS: &str =
    "Hello World Hello Hadoop Hello spark kafka hive zookeeper hbase flume sqoop";

pub struct WordsSourceFactory;

#[async_trait]
impl SourceFactory for WordsSourceFactory {
    fn name(&self) -> &'static str {
        "words"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &[
            "seed",
            "rows_per_batch",
            "words_per_line",
            "vocabulary",
            "distribution",
            "zipf_exponent",
        ]
    }

    async fn create(&self, spec: SourceSpec, _ctx: &SourceContext) -> Result<Box<dyn Source>> {
        let o = &spec.options;
        let vocabulary = match o.get("vocabulary") {
            None => Vocabulary::from_words(TUTORIAL_WORDS),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(0) => {
                    return plan_err!(
                        "words source '{}': vocabulary size must be positive",
                        spec.name
                    );
                }
                Ok(n) => Vocabulary::numbered(n),
                Err(_) => Vocabulary::from_words(v),
            },
        };
        let zipf_exponent = match o
            .get_choice("distribution", &["uniform", "zipf"])?
            .as_deref()
        {
            Some("zipf") => Some(o.get_f64("zipf_exponent")?.unwrap_or(1.0)),
            _ => None,
        };
        let source = WordsSource::new(
            o.get_u64("seed")?.unwrap_or(0),
            o.get_usize("rows_per_batch")?.unwrap_or(10),
            o.get_usize("words_per_line")?.unwrap_or(2),
            vocabulary.words,
            zipf_exponent,
        )
        .map_err(|e| SluiceError::Config(format!("words source '{}': {e}", spec.name)))?;
        Ok(Box::new(source))
    }
}

#[derive(Debug)]
struct Vocabulary {
    words: Vec<String>,
}

impl Vocabulary {
    fn from_words(text: &str) -> Self {
        let words = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty());
        Self {
            words: words.map(str::to_string).collect(),
        }
    }

    fn numbered(n: usize) -> Self {
        Self {
            words: (0..n).map(|i| format!("w{i}")).collect(),
        }
    }
}

#[derive(Debug)]
enum Picker {
    Uniform,
    Zipf(Zipf<f64>),
}

/// See the module docs.
#[derive(Debug)]
pub struct WordsSource {
    schema: SchemaRef,
    seed: u64,
    rows_per_batch: usize,
    words_per_line: usize,
    vocabulary: Vocabulary,
    picker: Picker,
}

impl WordsSource {
    /// `rows_per_batch` lines of `words_per_line` words drawn from `vocabulary`,
    /// uniformly or, with `zipf_exponent`, by Zipf's law (the first words most often).
    pub fn new(
        seed: u64,
        rows_per_batch: usize,
        words_per_line: usize,
        vocabulary: Vec<String>,
        zipf_exponent: Option<f64>,
    ) -> std::result::Result<Self, String> {
        if vocabulary.is_empty() {
            return Err("the vocabulary has no words".into());
        }
        let picker = match zipf_exponent {
            None => Picker::Uniform,
            Some(e) => Picker::Zipf(
                Zipf::new(vocabulary.len() as f64, e)
                    .map_err(|err| format!("zipf_exponent {e}: {err}"))?,
            ),
        };
        Ok(Self {
            schema: text_schema(),
            seed,
            rows_per_batch,
            words_per_line: words_per_line.max(1),
            vocabulary: Vocabulary { words: vocabulary },
            picker,
        })
    }

    /// The lines of batch `batch_time`, built straight into Arrow buffers.
    pub fn generate(&self, batch_time: i64) -> Result<RecordBatch> {
        let mut rng = SmallRng::seed_from_u64(
            self.seed ^ (batch_time as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let n = self.vocabulary.words.len();
        let mut values: Vec<u8> = Vec::with_capacity(
            self.rows_per_batch
                .saturating_mul(self.words_per_line)
                .saturating_mul(8)
                .min(1 << 31),
        );
        let mut offsets: Vec<i32> =
            Vec::with_capacity(self.rows_per_batch.saturating_add(1).min(1 << 28));
        offsets.push(0);
        for _ in 0..self.rows_per_batch {
            for w in 0..self.words_per_line {
                if w > 0 {
                    values.push(b' ');
                }
                let i = match &self.picker {
                    Picker::Uniform => rng.random_range(0..n),
                    Picker::Zipf(z) => (z.sample(&mut rng) as usize).clamp(1, n) - 1,
                };
                values.extend_from_slice(self.vocabulary.words[i].as_bytes());
            }
            let end = i32::try_from(values.len()).map_err(|_| {
                SluiceError::Config("words source: a batch over 2 GiB of text".into())
            })?;
            offsets.push(end);
        }
        let array = StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(values),
            None,
        )?;
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![Arc::new(array)],
        )?)
    }
}

#[async_trait]
impl Source for WordsSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    async fn cut(&mut self, batch_time: i64) -> Result<Vec<RecordBatch>> {
        Ok(vec![self.generate(batch_time)?])
    }

    /// Nothing: a batch depends only on its time.
    fn position(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::Null)
    }

    fn restore(&mut self, _position: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(vocabulary: &str, picker: Picker, rows: usize) -> WordsSource {
        WordsSource {
            schema: text_schema(),
            seed: 7,
            rows_per_batch: rows,
            words_per_line: 2,
            vocabulary: Vocabulary::from_words(vocabulary),
            picker,
        }
    }

    fn lines(b: &RecordBatch) -> Vec<String> {
        let a = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        a.iter().map(|s| s.unwrap().to_string()).collect()
    }

    #[test]
    fn lines_have_words_from_the_vocabulary_and_repeat_per_batch_time() {
        let s = source(TUTORIAL_WORDS, Picker::Uniform, 50);
        let a = lines(&s.generate(1000).unwrap());
        assert_eq!(a.len(), 50);
        for l in &a {
            let w: Vec<&str> = l.split(' ').collect();
            assert_eq!(w.len(), 2);
            assert!(
                w.iter().all(|w| TUTORIAL_WORDS.split(' ').any(|v| v == *w)),
                "{l}"
            );
        }
        assert_eq!(
            a,
            lines(&s.generate(1000).unwrap()),
            "same seed and time, same lines"
        );
        assert_ne!(
            a,
            lines(&s.generate(2000).unwrap()),
            "another batch, other lines"
        );
    }

    #[test]
    fn zipf_favours_the_first_words() {
        let words: Vec<String> = (0..1000).map(|i| format!("w{i}")).collect();
        let s = source(
            &words.join(","),
            Picker::Zipf(Zipf::new(1000.0, 1.0).unwrap()),
            5000,
        );
        let all = lines(&s.generate(1000).unwrap()).join(" ");
        let count = |w: &str| all.split(' ').filter(|x| *x == w).count();
        assert!(
            count("w0") > 5 * count("w99").max(1),
            "w0 {} w99 {}",
            count("w0"),
            count("w99")
        );
    }
}
