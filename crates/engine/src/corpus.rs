//! Seeded synthetic corpus: topics, sessions, Zipf-like vocabularies, queries with ground truth,
//! and a continuing event stream for the `remember` workload.
//!
//! Everything is drawn from `ChaCha8Rng` streams derived from one seed, and no hash-map iteration
//! order ever reaches the output, so a seed names exactly one corpus on every platform.

use super::fixed_hash::{FixedMap, FixedSet};

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::error::{EngineError, Result};

/// Sizes and shape of a generated corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorpusConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of events in the corpus.
    pub events: usize,
    /// Number of planted topics.
    pub topics: usize,
    /// Approximate number of sessions (session lengths vary around `events / sessions`).
    pub sessions: usize,
    /// Number of queries with ground truth.
    pub queries: usize,
    /// Topics a session talks about.
    pub topics_per_session: usize,
    /// Size of the vocabulary shared by all topics.
    pub common_words: usize,
    /// Size of each topic's own vocabulary.
    pub topic_words: usize,
    /// Fewest words in an event.
    pub min_words: usize,
    /// Most words in an event.
    pub max_words: usize,
    /// Probability that a word of a topical event comes from its topic's vocabulary.
    pub topic_share: f64,
    /// Fraction of events that belong to no topic (words drawn from everywhere).
    pub noise_share: f64,
    /// Zipf exponent of word frequencies (1.0 is classic Zipf).
    pub zipf_exponent: f64,
    /// Timestamp (seconds) of the first event.
    pub start_ts: i64,
}

impl Default for CorpusConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            events: 20_000,
            topics: 40,
            sessions: 400,
            queries: 500,
            topics_per_session: 3,
            common_words: 500,
            topic_words: 400,
            min_words: 10,
            max_words: 28,
            topic_share: 0.85,
            noise_share: 0.03,
            zipf_exponent: 1.0,
            start_ts: 1_700_000_000,
        }
    }
}

impl CorpusConfig {
    /// Checks ranges; the message names the offending field.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(EngineError::InvalidConfig(format!("corpus: {m}")));
        if self.topics == 0 {
            return bad("topics must be at least 1".into());
        }
        if self.sessions == 0 {
            return bad("sessions must be at least 1".into());
        }
        if self.topics_per_session == 0 || self.topics_per_session > self.topics {
            return bad(format!(
                "topics_per_session must be in 1..={} (topics), got {}",
                self.topics, self.topics_per_session
            ));
        }
        if self.common_words < 10 || self.topic_words < 10 {
            return bad(format!(
                "common_words and topic_words must be at least 10, got {} and {}",
                self.common_words, self.topic_words
            ));
        }
        let vocabulary = self
            .topics
            .saturating_mul(self.topic_words)
            .saturating_add(self.common_words);
        if vocabulary > 5_000_000 {
            return bad(format!(
                "common_words + topics * topic_words must be at most 5,000,000, got {vocabulary}"
            ));
        }
        if self.min_words < 3 || self.max_words < self.min_words || self.max_words > 10_000 {
            return bad(format!(
                "need 3 <= min_words <= max_words <= 10000, got {} and {}",
                self.min_words, self.max_words
            ));
        }
        if !(0.0..=1.0).contains(&self.topic_share) || !(0.0..=1.0).contains(&self.noise_share) {
            return bad("topic_share and noise_share must be within 0..=1".into());
        }
        if !(self.zipf_exponent.is_finite() && self.zipf_exponent >= 0.0) {
            return bad("zipf_exponent must be a finite number >= 0".into());
        }
        if self.queries > 0 && self.events == 0 {
            return bad("queries need at least one event".into());
        }
        Ok(())
    }
}

/// An event as the engine receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Session the event belongs to.
    pub session: i64,
    /// Seconds since the Unix epoch.
    pub ts: i64,
    /// Free text.
    pub text: String,
    /// Labels such as `topic:...`, `kind:...`, `source:...`.
    pub tags: Vec<String>,
}

/// A generated event with its id and ground-truth topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Id the event gets when loaded into an empty engine (1-based, in order).
    pub id: i64,
    /// Session the event belongs to.
    pub session: i64,
    /// Seconds since the Unix epoch.
    pub ts: i64,
    /// Free text.
    pub text: String,
    /// Labels such as `topic:...`, `kind:...`, `source:...`.
    pub tags: Vec<String>,
    /// Planted topic (ground truth for evaluation only; `None` for noise events). The engine
    /// never sees this field.
    pub topic: Option<u32>,
}

impl Event {
    /// The engine's view of this event (no id, no ground truth).
    pub fn to_new_event(&self) -> NewEvent {
        NewEvent {
            session: self.session,
            ts: self.ts,
            text: self.text.clone(),
            tags: self.tags.clone(),
        }
    }
}

impl From<Event> for NewEvent {
    fn from(e: Event) -> Self {
        NewEvent {
            session: e.session,
            ts: e.ts,
            text: e.text,
            tags: e.tags,
        }
    }
}

/// A query with its ground truth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Query text: some content words of the target event, shuffled, maybe one noise word.
    pub text: String,
    /// Ids of the events the query was built from (currently exactly one).
    pub relevant: Vec<i64>,
}

/// A generated corpus.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The configuration it was generated from.
    pub config: CorpusConfig,
    /// Events in id order.
    pub events: Vec<Event>,
    /// Queries with ground truth.
    pub queries: Vec<Query>,
    topic_names: Vec<String>,
    /// Generator state right after the last corpus event, so `stream()` continues seamlessly.
    tail: Generator,
}

impl Corpus {
    /// Generates the corpus described by `config`.
    pub fn generate(config: &CorpusConfig) -> Result<Corpus> {
        config.validate()?;
        let mut gen = Generator::new(config);
        let events: Vec<Event> = (0..config.events).map(|_| gen.next_event()).collect();
        let queries = make_queries(config, &events, &gen.vocab.common);
        Ok(Corpus {
            config: config.clone(),
            topic_names: gen.vocab.topic_names.clone(),
            events,
            queries,
            tail: gen,
        })
    }

    /// Name of planted topic `t` (as used in its `topic:` tag).
    pub fn topic_name(&self, t: u32) -> Option<&str> {
        self.topic_names.get(t as usize).map(String::as_str)
    }

    /// A picker of this corpus's queries that repeats a recent one with probability
    /// `repeat` (clamped to 0..=1), so a recall cache sees realistic hits.
    pub fn query_picker(&self, repeat: f64) -> QueryPicker {
        QueryPicker {
            queries: self.queries.len(),
            next: 0,
            recent: std::collections::VecDeque::with_capacity(RECENT_QUERIES),
            repeat: repeat.clamp(0.0, 1.0),
        }
    }

    /// Endless stream of further events in the same style, continuing ids, sessions and time
    /// after the corpus. Each call starts from the same point.
    pub fn stream(&self) -> EventStream {
        EventStream {
            gen: self.tail.clone(),
        }
    }
}

/// Recent queries a repeated pick chooses from.
const RECENT_QUERIES: usize = 64;

/// Chooses query indexes: the next query in order, or (with the picker's repeat probability)
/// one of the last 64 picked. Every random draw comes from the caller's generator, so a seeded
/// generator repeats the sequence.
#[derive(Clone, Debug)]
pub struct QueryPicker {
    queries: usize,
    next: usize,
    recent: std::collections::VecDeque<usize>,
    repeat: f64,
}

impl QueryPicker {
    /// The next query's index.
    pub fn pick(&mut self, rng: &mut dyn rand::RngCore) -> usize {
        if !self.recent.is_empty() && rng.random_bool(self.repeat) {
            let i = rng.random_range(0..self.recent.len());
            return self.recent[i];
        }
        let q = self.next % self.queries.max(1);
        self.next += 1;
        if self.recent.len() == RECENT_QUERIES {
            self.recent.pop_front();
        }
        self.recent.push_back(q);
        q
    }
}

/// Endless, deterministic stream of new events (see [`Corpus::stream`]).
#[derive(Debug, Clone)]
pub struct EventStream {
    gen: Generator,
}

impl EventStream {
    /// The next event as the engine receives it (ground truth dropped).
    pub fn next_event(&mut self) -> NewEvent {
        self.gen.next_event().into()
    }

    /// The next event with its prospective id and planted topic.
    pub fn next_labelled(&mut self) -> Event {
        self.gen.next_event()
    }
}

impl Iterator for EventStream {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        Some(self.gen.next_event())
    }
}

/// Cumulative-weight sampler over ranks `0..n` with weight `1 / (rank + 1)^s`.
#[derive(Debug, Clone)]
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut acc = 0.0;
        let cdf = (0..n)
            .map(|r| {
                acc += 1.0 / ((r + 1) as f64).powf(s);
                acc
            })
            .collect();
        Self { cdf }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = self.cdf.last().copied().unwrap_or(0.0);
        let u = rng.random::<f64>() * total;
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len().saturating_sub(1))
    }
}

const ONSETS: &[&str] = &[
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "ch", "th", "br",
    "tr", "gl",
];
const NUCLEI: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou", "ei"];
const KINDS: &[&str] = &["note", "decision", "question", "observation", "todo"];
const SOURCES: &[&str] = &["chat", "tool", "file", "web"];

/// Word lists: common words, per-topic words, topic names. All words are distinct.
#[derive(Debug, Clone)]
struct Vocabulary {
    common: Vec<String>,
    topics: Vec<Vec<String>>,
    topic_names: Vec<String>,
}

impl Vocabulary {
    fn new(config: &CorpusConfig, rng: &mut ChaCha8Rng) -> Self {
        let mut seen = FixedSet::default();
        let mut word = |rng: &mut ChaCha8Rng| loop {
            let syllables = match rng.random_range(0..10) {
                0..=2 => 2,
                3..=7 => 3,
                _ => 4,
            };
            let mut w = String::new();
            for _ in 0..syllables {
                w.push_str(ONSETS[rng.random_range(0..ONSETS.len())]);
                w.push_str(NUCLEI[rng.random_range(0..NUCLEI.len())]);
            }
            if seen.insert(w.clone()) {
                return w;
            }
        };
        let common = (0..config.common_words).map(|_| word(rng)).collect();
        let topics = (0..config.topics)
            .map(|_| (0..config.topic_words).map(|_| word(rng)).collect())
            .collect();
        let topic_names = (0..config.topics).map(|_| word(rng)).collect();
        Self {
            common,
            topics,
            topic_names,
        }
    }
}

/// The event generator: vocabulary, samplers and session state.
#[derive(Debug, Clone)]
struct Generator {
    rng: ChaCha8Rng,
    vocab: Vocabulary,
    common_zipf: Zipf,
    topic_zipf: Zipf,
    min_words: usize,
    max_words: usize,
    topic_share: f64,
    noise_share: f64,
    avg_session: usize,
    topics_per_session: usize,
    next_id: i64,
    session: i64,
    session_left: usize,
    session_topics: Vec<u32>,
    ts: i64,
}

impl Generator {
    fn new(config: &CorpusConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let vocab = Vocabulary::new(config, &mut rng);
        Self {
            rng,
            common_zipf: Zipf::new(config.common_words, config.zipf_exponent),
            topic_zipf: Zipf::new(config.topic_words, config.zipf_exponent),
            vocab,
            min_words: config.min_words,
            max_words: config.max_words,
            topic_share: config.topic_share,
            noise_share: config.noise_share,
            avg_session: (config.events / config.sessions).max(1),
            topics_per_session: config.topics_per_session,
            next_id: 1,
            session: 0,
            session_left: 0,
            session_topics: Vec::new(),
            ts: config.start_ts,
        }
    }

    fn next_event(&mut self) -> Event {
        if self.session_left == 0 {
            self.session += 1;
            let lo = (self.avg_session / 2).max(1);
            let hi = (self.avg_session * 3 / 2).max(lo);
            self.session_left = self.rng.random_range(lo..=hi);
            let n_topics = self.vocab.topics.len();
            self.session_topics =
                rand::seq::index::sample(&mut self.rng, n_topics, self.topics_per_session)
                    .into_iter()
                    .map(|t| t as u32)
                    .collect();
            if self.next_id > 1 {
                self.ts += self.rng.random_range(1_800..=43_200);
            }
        } else {
            self.ts += self.rng.random_range(5..=180);
        }
        self.session_left -= 1;

        let rng = &mut self.rng;
        let topic = if rng.random_bool(self.noise_share) {
            None
        } else {
            self.session_topics.choose(rng).copied()
        };
        let n_words = rng.random_range(self.min_words..=self.max_words);
        let mut words: Vec<&str> = Vec::with_capacity(n_words);
        for _ in 0..n_words {
            let w = match topic {
                Some(t) if rng.random_bool(self.topic_share) => {
                    &self.vocab.topics[t as usize][self.topic_zipf.sample(rng)]
                }
                None if rng.random_bool(0.5) => {
                    // Noise events mix words from arbitrary topics, so they resemble no topic.
                    let t = rng.random_range(0..self.vocab.topics.len());
                    &self.vocab.topics[t][self.topic_zipf.sample(rng)]
                }
                _ => &self.vocab.common[self.common_zipf.sample(rng)],
            };
            words.push(w);
        }
        let text = render_sentence(&words, rng);
        let topic_tag = match topic {
            Some(t) => format!("topic:{}", self.vocab.topic_names[t as usize]),
            None => "topic:misc".to_owned(),
        };
        let tags = vec![
            topic_tag,
            format!("kind:{}", KINDS[rng.random_range(0..KINDS.len())]),
            format!("source:{}", SOURCES[rng.random_range(0..SOURCES.len())]),
        ];
        let id = self.next_id;
        self.next_id += 1;
        Event {
            id,
            session: self.session,
            ts: self.ts,
            text,
            tags,
            topic,
        }
    }
}

/// Joins words into a sentence with a capital letter, the odd comma and a full stop, so the
/// tokenizer has real punctuation and case to deal with.
fn render_sentence(words: &[&str], rng: &mut ChaCha8Rng) -> String {
    let mut s = String::with_capacity(words.iter().map(|w| w.len() + 2).sum());
    for (i, w) in words.iter().enumerate() {
        if i == 0 {
            let mut cs = w.chars();
            if let Some(c) = cs.next() {
                s.extend(c.to_uppercase());
                s.push_str(cs.as_str());
            }
        } else {
            if rng.random_bool(0.08) {
                s.push(',');
            }
            s.push(' ');
            s.push_str(w);
        }
    }
    s.push('.');
    s
}

/// Builds queries from random target events: 4 to 7 of the target's distinct content words
/// (words outside the common vocabulary), drawn with probability proportional to their inverse
/// document frequency so rarer words are favoured, shuffled, and in 30% of queries one frequent
/// common word inserted as noise.
fn make_queries(config: &CorpusConfig, events: &[Event], common_words: &[String]) -> Vec<Query> {
    if events.is_empty() || config.queries == 0 {
        return Vec::new();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x5155_4552_5953_2121);
    let mut df: FixedMap<String, u32> = FixedMap::default();
    let docs: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let mut w = super::embed::tokenize(&e.text);
            w.sort_unstable();
            w.dedup();
            w
        })
        .collect();
    for d in &docs {
        for w in d {
            *df.entry(w.clone()).or_insert(0) += 1;
        }
    }
    let n = events.len() as f64;
    let common_zipf = Zipf::new(config.common_words.min(50), config.zipf_exponent);
    let common: FixedSet<&str> = common_words.iter().map(String::as_str).collect();
    let mut queries = Vec::with_capacity(config.queries);
    for _ in 0..config.queries {
        let target = rng.random_range(0..events.len());
        // Candidates in first-occurrence order, so the weighted draw below is deterministic.
        let mut cands: Vec<(String, f64)> = Vec::new();
        let words = super::embed::tokenize(&events[target].text);
        let content = words
            .iter()
            .filter(|w| !common.contains(w.as_str()))
            .count();
        for w in words {
            // Content words only (the shared common vocabulary plays the role of function
            // words), unless the event has too few of them.
            if content >= 3 && common.contains(w.as_str()) {
                continue;
            }
            if !cands.iter().any(|(c, _)| *c == w) {
                let idf = (n / f64::from(*df.get(&w).unwrap_or(&1))).ln().max(0.01);
                cands.push((w, idf));
            }
        }
        let m = rng.random_range(4..=7).min(cands.len());
        let mut picked = Vec::with_capacity(m + 1);
        for _ in 0..m {
            let total: f64 = cands.iter().map(|c| c.1).sum();
            let mut u = rng.random::<f64>() * total;
            let mut idx = cands.len() - 1;
            for (i, c) in cands.iter().enumerate() {
                if u < c.1 {
                    idx = i;
                    break;
                }
                u -= c.1;
            }
            picked.push(cands.swap_remove(idx).0);
        }
        picked.shuffle(&mut rng);
        if rng.random_bool(0.3) {
            let w = common_words[common_zipf.sample(&mut rng)].clone();
            let at = rng.random_range(0..=picked.len());
            picked.insert(at, w);
        }
        queries.push(Query {
            text: picked.join(" "),
            relevant: vec![events[target].id],
        });
    }
    queries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> CorpusConfig {
        CorpusConfig {
            events: 600,
            topics: 6,
            sessions: 20,
            queries: 30,
            ..CorpusConfig::default()
        }
    }

    #[test]
    fn same_seed_same_corpus_other_seed_other_corpus() {
        let a = Corpus::generate(&small()).unwrap();
        let b = Corpus::generate(&small()).unwrap();
        assert_eq!(a.events, b.events);
        assert_eq!(a.queries, b.queries);
        let c = Corpus::generate(&CorpusConfig {
            seed: 43,
            ..small()
        })
        .unwrap();
        assert_ne!(a.events[0].text, c.events[0].text);
    }

    #[test]
    fn events_have_monotone_time_ids_tags_and_sessions() {
        let c = Corpus::generate(&small()).unwrap();
        assert_eq!(c.events.len(), 600);
        for (i, e) in c.events.iter().enumerate() {
            assert_eq!(e.id, i as i64 + 1);
            assert_eq!(e.tags.len(), 3);
            assert!(e.tags[0].starts_with("topic:"));
            assert!(e.text.ends_with('.'));
        }
        assert!(c.events.windows(2).all(|w| w[1].ts > w[0].ts));
        let sessions = c.events.last().unwrap().session;
        assert!((10..=40).contains(&sessions), "{sessions} sessions");
        // Each session draws from at most `topics_per_session` topics.
        let mut by_session: FixedMap<i64, FixedSet<u32>> = FixedMap::default();
        for e in &c.events {
            if let Some(t) = e.topic {
                by_session.entry(e.session).or_default().insert(t);
            }
        }
        assert!(by_session.values().all(|s| s.len() <= 3));
    }

    #[test]
    fn queries_use_words_of_their_target() {
        let c = Corpus::generate(&small()).unwrap();
        assert_eq!(c.queries.len(), 30);
        for q in &c.queries {
            let target = &c.events[(q.relevant[0] - 1) as usize];
            let target_words = super::super::embed::tokenize(&target.text);
            let qw = super::super::embed::tokenize(&q.text);
            let hits = qw.iter().filter(|w| target_words.contains(w)).count();
            assert!(hits >= 3.min(target_words.len()) && hits + 1 >= qw.len());
        }
    }

    #[test]
    fn word_frequencies_are_skewed() {
        let c = Corpus::generate(&small()).unwrap();
        let mut counts: FixedMap<String, usize> = FixedMap::default();
        for e in &c.events {
            for w in super::super::embed::tokenize(&e.text) {
                *counts.entry(w).or_default() += 1;
            }
        }
        let mut v: Vec<usize> = counts.into_values().collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        // The head is much more frequent than the median word: a long tail exists.
        assert!(v[0] > 20 * v[v.len() / 2], "{} vs {}", v[0], v[v.len() / 2]);
    }

    #[test]
    fn stream_continues_after_corpus_and_is_repeatable() {
        let c = Corpus::generate(&small()).unwrap();
        let s1: Vec<Event> = c.stream().take(5).collect();
        let s2: Vec<Event> = c.stream().take(5).collect();
        assert_eq!(s1, s2);
        assert_eq!(s1[0].id, 601);
        assert!(s1[0].ts > c.events.last().unwrap().ts);
    }

    #[test]
    fn invalid_config_is_rejected_with_field_name() {
        let e = Corpus::generate(&CorpusConfig {
            topics_per_session: 0,
            ..small()
        })
        .unwrap_err();
        assert!(e.to_string().contains("topics_per_session"), "{e}");
    }

    #[test]
    fn query_picker_walks_the_queries_and_repeats_only_recent_ones() {
        let corpus = Corpus::generate(&small()).unwrap();
        let n = corpus.queries.len();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut fresh = corpus.query_picker(0.0);
        let order: Vec<usize> = (0..n + 2).map(|_| fresh.pick(&mut rng)).collect();
        let expected: Vec<usize> = (0..n + 2).map(|i| i % n).collect();
        assert_eq!(order, expected);
        // Always repeating: after the first pick, every pick is that one query.
        let mut repeat = corpus.query_picker(1.0);
        let picks: Vec<usize> = (0..20).map(|_| repeat.pick(&mut rng)).collect();
        assert_eq!(picks, vec![0; 20]);
        // Half and half: a pick is the next query in order or one of the recent picks.
        let mut mixed = corpus.query_picker(0.5);
        let (mut next, mut fresh) = (0usize, 0u32);
        let mut recent: Vec<usize> = Vec::new();
        for _ in 0..500 {
            let q = mixed.pick(&mut rng);
            if q == next % n {
                next += 1;
                fresh += 1;
                recent.push(q);
            } else {
                let window = &recent[recent.len().saturating_sub(64)..];
                assert!(window.contains(&q), "{q} is neither next nor recent");
            }
        }
        assert!(fresh > 150 && fresh < 350, "{fresh} fresh picks of 500");
    }
}
