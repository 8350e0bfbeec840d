//! The embedded, deterministic decider: reads a prompt with hand-written
//! rules, no network and no model.
//!
//! How a prompt is read:
//! 1. [`lexer`] splits it into words, numbers, quoted text and punctuation.
//! 2. [`target`] finds every span that refers to scenes: whole names (case-,
//!    plural- and one-typo-insensitive, acronyms like "CTA"), one distinctive
//!    word of a longer name ("pricing" → "Pricing Table"), positions ("scene
//!    2", "the second scene", "last", "the last two scenes"), "the broken
//!    scene", "every scene", pronouns ("it", "this scene"), and names that do
//!    not exist ("the pricing scene" when there is none).
//! 3. [`clause`] splits it into requests ("add an intro *and then* make the
//!    outro shorter") and reads each: its verb and object, or for a verbless
//!    statement what it reports ("scene 3 is broken").
//! 4. Here each request gets its tool, target(s), complexity and parameters;
//!    pronouns follow the previous request's scene; a request that cannot
//!    name its scene turns the whole decision into a clarification question.
//!
//! The labels this follows are in `server/tests/fixtures/` (see the eval
//! README): an edit in a project with no scenes adds one; with one scene,
//! "it" is that scene; attached images turn a create into
//! createSceneFromImage, an edit into editSceneWithImage, and a bare
//! question into analyzeImage.

pub(crate) mod clause;
mod target;

use std::collections::BTreeMap;
use std::ops::Range;

use crate::decide::{
    Decider, Decision, DecisionBackend, DecisionInput, EditComplexity, Outcome, Tool, ToolCall, ToolParams,
};
use crate::model::{Scene, SceneStatus};
use crate::text::{duration, lexer};

use clause::{Intent, Reading};
use duration::Amount;
use lexer::Token;
use target::{How, Mention, Refers, Unresolved};

/// Most steps a workflow gets; longer prompts are cut here (and say so).
pub const MAX_WORKFLOW_STEPS: usize = 12;

/// The rules backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct RulesDecider;

#[async_trait::async_trait]
impl Decider for RulesDecider {
    async fn decide(&self, input: &DecisionInput<'_>) -> Decision {
        decide(input)
    }
}

/// How a step's scene was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// A mention in the clause.
    Mention(How),
    /// "it" or no mention, in a project with one scene.
    OnlyScene,
    /// "it" (or nothing) after a request about a scene.
    Previous,
    /// The only broken scene, for a fix without a target.
    OnlyBroken,
}

impl Found {
    fn describe(self) -> &'static str {
        match self {
            Found::Mention(how) => how.describe(),
            Found::OnlyScene => "the only scene",
            Found::Previous => "the scene of the previous request",
            Found::OnlyBroken => "the only broken scene",
        }
    }

    fn confidence(self) -> f64 {
        match self {
            Found::Mention(How::Name | How::Ordinal | How::Status | How::All) => 0.9,
            Found::Mention(How::Fuzzy | How::Partial | How::ElementName) => 0.8,
            Found::Mention(How::WeakPartial) => 0.65,
            Found::OnlyScene => 0.85,
            Found::Previous => 0.75,
            Found::OnlyBroken => 0.8,
        }
    }
}

/// What the scenes of a request turned out to be.
#[derive(Debug, Clone, PartialEq)]
enum Resolution {
    /// These scenes.
    Scenes(Vec<usize>, Found),
    /// The scene being added by the previous request.
    NewScene,
    /// Could be any of these.
    Ambiguous(Vec<usize>),
    /// Names something that does not exist.
    Missing(Unresolved),
    /// The project has no scenes.
    NoScenes,
}

/// What "it" points at for the next request.
#[derive(Debug, Clone, PartialEq)]
enum Antecedent {
    None,
    Scenes(Vec<usize>),
    NewScene,
}

/// One planned tool call.
#[derive(Debug, Clone)]
struct Step {
    tool: Tool,
    target: Option<usize>,
    complexity: Option<EditComplexity>,
    params: ToolParams,
    clause: Range<usize>,
    /// Clauses merged into this step (for the instruction text).
    extra_clauses: Vec<Range<usize>>,
    confidence: f64,
    why: String,
    image_clause: bool,
    /// Read from a statement ("the pics look washed out") rather than a request.
    from_state: bool,
}

/// Why the rules ask instead of acting.
#[derive(Debug, Clone)]
struct Ask {
    question: String,
    /// Scene ids.
    candidates: Vec<String>,
    why: String,
    confidence: f64,
}

struct Ctx<'a> {
    prompt: &'a str,
    tokens: Vec<Token>,
    scenes: &'a [Scene],
    image_ids: &'a [String],
    mentions: target::Mentions,
}

impl Ctx<'_> {
    fn text(&self, range: &Range<usize>) -> &str {
        let start = self.tokens.get(range.start).map(|t| t.start).unwrap_or(0);
        let end = range.end.checked_sub(1).and_then(|e| self.tokens.get(e)).map(|t| t.end).unwrap_or(start);
        self.prompt.get(start..end).unwrap_or("").trim()
    }

    fn clause_mentions(&self, range: &Range<usize>) -> Vec<&Mention> {
        self.mentions.list.iter().filter(|m| range.start <= m.start && m.start < range.end).collect()
    }

    fn label(&self, k: usize) -> String {
        self.scenes.get(k).map(|s| format!("\"{}\"", s.name)).unwrap_or_default()
    }
}

/// Decides what to do with a prompt. Pure and deterministic.
pub fn decide(input: &DecisionInput) -> Decision {
    let tokens = lexer::tokenize(input.prompt);
    let mentions = target::find_mentions(&tokens, input.scenes, input.image_ids.len());
    let ctx = Ctx { prompt: input.prompt, tokens, scenes: input.scenes, image_ids: input.image_ids, mentions };
    let clauses = clause::split(&ctx.tokens, &ctx.mentions.consumed);

    let mut steps: Vec<Step> = Vec::new();
    let mut antecedent = Antecedent::None;
    let mut truncated = false;
    for range in clauses {
        let mentions = ctx.clause_mentions(&range);
        let durations = duration::find(&ctx.tokens, range.clone(), &ctx.mentions.consumed);
        let reading = clause::read(
            &ctx.tokens,
            range.clone(),
            &ctx.mentions.consumed,
            &mentions,
            &durations,
            ctx.image_ids.len(),
        );
        let Some(intent) = reading.intent else {
            // A clause that asks nothing can still set what "it" means next.
            if let Some(Resolution::Scenes(s, _)) = explicit(&ctx, &mentions) {
                antecedent = Antecedent::Scenes(s);
            }
            continue;
        };
        if steps.len() >= MAX_WORKFLOW_STEPS {
            truncated = true;
            break;
        }
        let request = Request { range: &range, intent, reading: &reading, mentions: &mentions };
        match plan(&ctx, request, &antecedent, &mut steps) {
            Ok(next) => antecedent = next,
            Err(ask) => return clarification(ask),
        }
    }
    merge_adjacent(&mut steps);
    if steps.is_empty() {
        return nothing_asked(&ctx);
    }
    attach_images(&ctx, &mut steps);
    finish(&ctx, steps, truncated)
}

/// The scenes named outright in a clause (no pronouns), if they are clear.
fn explicit(ctx: &Ctx, mentions: &[&Mention]) -> Option<Resolution> {
    let r = resolve(ctx, mentions, &Antecedent::None, Intent::Edit);
    match r {
        Resolution::Scenes(_, Found::Mention(_)) => Some(r),
        _ => None,
    }
}

/// Finds the scenes a clause acts on.
fn resolve(ctx: &Ctx, mentions: &[&Mention], antecedent: &Antecedent, intent: Intent) -> Resolution {
    let n = ctx.scenes.len();
    if n == 0 {
        return Resolution::NoScenes;
    }
    let targets: Vec<&Mention> = mentions.iter().copied().filter(|m| !m.reference).collect();
    let excluded: Vec<usize> = mentions
        .iter()
        .filter(|m| m.excluded)
        .filter_map(|m| match &m.refers {
            Refers::Scenes(s, _) => Some(s.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let strong: Vec<(&Mention, &Vec<usize>, How)> = targets
        .iter()
        .filter_map(|m| match &m.refers {
            Refers::Scenes(s, how) if how.tier() >= 2 => Some((*m, s, *how)),
            _ => None,
        })
        .collect();
    let best_tier = strong.iter().map(|(_, _, h)| h.tier()).max().unwrap_or(0);
    let unresolved = targets.iter().find_map(|m| match &m.refers {
        Refers::Unresolved(u) => Some(u.clone()),
        _ => None,
    });
    if let Some(u) = unresolved
        && best_tier < 3
    {
        return Resolution::Missing(u);
    }
    if !strong.is_empty() {
        // "the intro and the outro", "scene 1 blue and scene 2 green": several targets.
        let joined = strong.len() >= 2
            && strong.windows(2).all(|w| {
                (w[0].0.end..w[1].0.start)
                    .any(|i| ctx.tokens.get(i).is_some_and(|t| t.is_any(&["and", "&", "both"]) || t.is_punct(',')))
            });
        let chosen: Vec<&(&Mention, &Vec<usize>, How)> = if joined {
            strong.iter().collect()
        } else {
            strong.iter().filter(|(_, _, h)| h.tier() == best_tier).collect()
        };
        let mut scenes: Vec<usize> = Vec::new();
        let mut how = chosen.first().map(|c| c.2).unwrap_or(How::Name);
        for (_, s, h) in &chosen {
            let group = matches!(h, How::Ordinal | How::Status | How::All);
            if s.len() > 1 && !group {
                return Resolution::Ambiguous((*s).clone());
            }
            for &k in s.iter() {
                if !scenes.contains(&k) {
                    scenes.push(k);
                }
            }
            if h.tier() < how.tier() {
                how = *h;
            }
        }
        let distinct_mentions = chosen.len();
        if scenes.len() > 1 && !joined && distinct_mentions > 1 {
            // "delete the quote from the stats scene": the scene that locates the
            // other words is the target, if exactly one does.
            let locative: Vec<&&(&Mention, &Vec<usize>, How)> =
                chosen.iter().filter(|c| clause::is_locative(&ctx.tokens, c.0)).collect();
            if let [only] = locative[..]
                && only.1.len() == 1
            {
                return Resolution::Scenes(only.1.clone(), Found::Mention(only.2));
            }
            return Resolution::Ambiguous(scenes);
        }
        if !excluded.is_empty() {
            scenes.retain(|k| !excluded.contains(k));
            if scenes.is_empty() {
                return Resolution::Ambiguous((0..n).filter(|k| !excluded.contains(k)).collect());
            }
        }
        return Resolution::Scenes(scenes, Found::Mention(how));
    }
    let pronoun = targets.iter().any(|m| m.refers == Refers::Pronoun);
    let weak: Vec<usize> = targets
        .iter()
        .filter_map(|m| match &m.refers {
            Refers::Scenes(s, How::WeakPartial) => Some(s.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    match antecedent {
        Antecedent::Scenes(s) if pronoun || weak.is_empty() => return Resolution::Scenes(s.clone(), Found::Previous),
        // Only an edit describes the scene being added; deleting "it" is not.
        Antecedent::NewScene if (pronoun || weak.is_empty()) && matches!(intent, Intent::Edit | Intent::Duration) => {
            return Resolution::NewScene;
        }
        _ => {}
    }
    if n == 1 {
        return Resolution::Scenes(vec![0], Found::OnlyScene);
    }
    if !pronoun && !weak.is_empty() {
        let mut w = weak;
        w.sort_unstable();
        w.dedup();
        return if w.len() == 1 {
            Resolution::Scenes(w, Found::Mention(How::WeakPartial))
        } else {
            Resolution::Ambiguous(w)
        };
    }
    if intent == Intent::Fix {
        let broken: Vec<usize> =
            ctx.scenes.iter().enumerate().filter(|(_, s)| s.status == SceneStatus::Broken).map(|(k, _)| k).collect();
        if broken.len() == 1 {
            return Resolution::Scenes(broken, Found::OnlyBroken);
        }
        if broken.len() > 1 {
            return Resolution::Ambiguous(broken);
        }
    }
    Resolution::Ambiguous((0..n).collect())
}

fn verb_phrase(intent: Intent) -> &'static str {
    match intent {
        Intent::Edit => "edit",
        Intent::Delete => "delete",
        Intent::Fix => "fix",
        Intent::Duration => "change the length of",
        Intent::Duplicate => "duplicate",
        Intent::Add => "add",
        Intent::Analyze => "analyze",
        Intent::Reorder => "move",
    }
}

/// "\"Intro\" (scene 1), \"Demo\" (scene 2) or \"Outro\" (scene 3)".
fn list_scenes(ctx: &Ctx, candidates: &[usize]) -> String {
    const SHOWN: usize = 8;
    let items: Vec<String> =
        candidates.iter().take(SHOWN).map(|&k| format!("{} (scene {})", ctx.label(k), k + 1)).collect();
    let mut text = match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        _ => format!("{} or {}", items[..items.len() - 1].join(", "), items[items.len() - 1]),
    };
    if candidates.len() > SHOWN {
        text.push_str(&format!(" (and {} more)", candidates.len() - SHOWN));
    }
    text
}

fn ask_for(ctx: &Ctx, intent: Intent, resolution: Resolution) -> Ask {
    let all: Vec<usize> = (0..ctx.scenes.len()).collect();
    let ids = |c: &[usize]| -> Vec<String> {
        c.iter().filter_map(|&k| ctx.scenes.get(k)).map(|s| s.scene_id.clone()).collect()
    };
    let verb = verb_phrase(intent);
    match resolution {
        Resolution::Ambiguous(c) => Ask {
            question: format!("Which scene should I {verb}: {}?", list_scenes(ctx, &c)),
            why: format!("The request to {verb} a scene fits {} scenes and nothing says which.", c.len()),
            candidates: ids(&c),
            confidence: 0.7,
        },
        Resolution::Missing(Unresolved::OutOfRange(p)) => Ask {
            question: format!(
                "There is no scene {p}; the project has {} scene{}: {}. Which one should I {verb}?",
                ctx.scenes.len(),
                if ctx.scenes.len() == 1 { "" } else { "s" },
                list_scenes(ctx, &all)
            ),
            why: format!("Scene {p} does not exist in a project of {} scenes.", ctx.scenes.len()),
            candidates: ids(&all),
            confidence: 0.8,
        },
        Resolution::Missing(Unresolved::Named(name)) => Ask {
            question: format!(
                "I couldn't find a scene called \"{name}\". Which scene should I {verb}: {}?",
                list_scenes(ctx, &all)
            ),
            why: format!("No scene matches \"{name}\"."),
            candidates: ids(&all),
            confidence: 0.75,
        },
        Resolution::Missing(Unresolved::NoneBroken) => Ask {
            question: format!("No scene is marked as broken. Which scene should I {verb}: {}?", list_scenes(ctx, &all)),
            why: "The prompt asks about the broken scene but no scene is broken.".to_string(),
            candidates: ids(&all),
            confidence: 0.75,
        },
        Resolution::NoScenes => Ask {
            question: format!(
                "The project has no scenes yet, so there is nothing to {verb}. Would you like to add a scene?"
            ),
            why: format!("The request to {verb} a scene has no scene to act on."),
            candidates: Vec::new(),
            confidence: 0.85,
        },
        Resolution::Scenes(..) | Resolution::NewScene => Ask {
            question: "What would you like me to do?".to_string(),
            why: "Nothing to act on.".to_string(),
            candidates: Vec::new(),
            confidence: 0.5,
        },
    }
}

/// One clause's request, as [`clause::read`] read it.
#[derive(Clone, Copy)]
struct Request<'a> {
    range: &'a Range<usize>,
    intent: Intent,
    reading: &'a Reading,
    /// The mentions inside the clause.
    mentions: &'a [&'a Mention],
}

/// Plans the tool call(s) of one clause; returns what "it" means next.
fn plan(ctx: &Ctx, request: Request, antecedent: &Antecedent, steps: &mut Vec<Step>) -> Result<Antecedent, Ask> {
    let Request { range, intent, reading, mentions } = request;
    match intent {
        Intent::Add | Intent::Duplicate => {
            let step = add_step(ctx, range, intent, reading, mentions, base_confidence(reading));
            let count = if intent == Intent::Add { clause::new_scene_count(&ctx.tokens, range) } else { 1 };
            for _ in 1..count {
                steps.push(step.clone());
            }
            steps.push(step);
            Ok(Antecedent::NewScene)
        }
        Intent::Reorder => Err(cannot_reorder(ctx, mentions)),
        Intent::Analyze => {
            steps.push(Step {
                tool: Tool::AnalyzeImage,
                target: None,
                complexity: None,
                params: ToolParams::default(),
                clause: range.clone(),
                extra_clauses: Vec::new(),
                confidence: 0.85 + base_confidence(reading),
                why: "analyzeImage: the prompt asks about the attached image".to_string(),
                image_clause: true,
                from_state: reading.from_state,
            });
            Ok(antecedent.clone())
        }
        Intent::Edit | Intent::Delete | Intent::Fix | Intent::Duration => {
            plan_scene_change(ctx, request, antecedent, steps)
        }
    }
}

/// What a clause's reading takes off every step's confidence: a statement
/// rather than a request, a verb read through a typo.
fn base_confidence(reading: &Reading) -> f64 {
    (if reading.from_state { -0.1 } else { 0.0 }) + if reading.typo { -0.1 } else { 0.0 }
}

/// Reordering is no tool's job: the question names the scenes mentioned.
fn cannot_reorder(ctx: &Ctx, mentions: &[&Mention]) -> Ask {
    let mut named: Vec<usize> = Vec::new();
    for m in mentions {
        if let Refers::Scenes(s, _) = &m.refers {
            for &k in s {
                if !named.contains(&k) {
                    named.push(k);
                }
            }
        }
    }
    Ask {
        question: "I can't change the order of scenes: I can add, edit, delete or fix a scene, change its length, or work from an image. What would you like me to do instead?".to_string(),
        candidates: named.iter().filter_map(|&k| ctx.scenes.get(k)).map(|s| s.scene_id.clone()).collect(),
        why: "The prompt asks to reorder scenes, which no tool does.".to_string(),
        confidence: 0.7,
    }
}

/// An edit, delete, fix or length change: one step per target scene; the
/// description of the scene the previous request adds; a new scene in an
/// empty project; or a question when the target is unclear.
fn plan_scene_change(
    ctx: &Ctx,
    request: Request,
    antecedent: &Antecedent,
    steps: &mut Vec<Step>,
) -> Result<Antecedent, Ask> {
    let Request { range, intent, reading, mentions } = request;
    let base_confidence = base_confidence(reading);
    let scene_mentions: Vec<&Mention> =
        mentions.iter().copied().filter(|m| !reading.element_mentions.contains(&m.start)).collect();
    let mentions = &scene_mentions[..];
    let (targets, found) = match resolve(ctx, mentions, antecedent, intent) {
        Resolution::Scenes(t, f) => (t, f),
        Resolution::NewScene => {
            describe_new_scene(ctx, range, reading, steps);
            return Ok(Antecedent::NewScene);
        }
        Resolution::NoScenes if matches!(intent, Intent::Edit | Intent::Duration) => {
            // An edit in an empty project creates the scene it describes.
            steps.push(add_step(ctx, range, Intent::Add, reading, mentions, base_confidence - 0.05));
            if let Some(last) = steps.last_mut() {
                last.why = format!("addScene: the project has no scenes, so the {} creates one", verb_phrase(intent));
            }
            return Ok(Antecedent::NewScene);
        }
        other => return Err(ask_for(ctx, intent, other)),
    };
    let tool = scene_tool(intent);
    let complexity = (intent == Intent::Edit).then_some(reading.complexity);
    let guess_penalty = if intent == Intent::Edit && reading.complexity_guessed { -0.1 } else { 0.0 };
    let attrs = if matches!(intent, Intent::Edit) {
        clause::attributes(&ctx.tokens, range, &ctx.mentions.consumed, &reading.timings)
    } else {
        BTreeMap::new()
    };
    let per_target = amounts_per_target(ctx, range, mentions, &targets, reading);
    for (k, &target) in targets.iter().enumerate() {
        let mut params = ToolParams { attributes: attrs.clone(), ..ToolParams::default() };
        let what = if intent == Intent::Duration {
            let current = ctx.scenes.get(target).and_then(|s| s.duration_seconds);
            set_length(target_amount(reading, &per_target, k, targets.len()), current, &mut params)
        } else {
            String::new()
        };
        let cx = complexity.map(|c| format!(", {}", c.as_str())).unwrap_or_default();
        steps.push(Step {
            tool,
            target: Some(target),
            complexity,
            params,
            clause: range.clone(),
            extra_clauses: Vec::new(),
            confidence: found.confidence() + base_confidence + guess_penalty,
            why: format!("{} on {} ({}){cx}{what}", tool.as_str(), ctx.label(target), found.describe()),
            image_clause: clause::mentions_image(&ctx.tokens, range)
                || clause::image_selection(&ctx.tokens, range, ctx.image_ids.len()).is_some(),
            from_state: reading.from_state,
        });
    }
    Ok(if intent == Intent::Delete { Antecedent::None } else { Antecedent::Scenes(targets) })
}

/// The tool that changes an existing scene the way `intent` asks.
fn scene_tool(intent: Intent) -> Tool {
    match intent {
        Intent::Edit => Tool::EditScene,
        Intent::Delete => Tool::DeleteScene,
        Intent::Fix => Tool::FixBrokenScene,
        _ => Tool::ChangeDuration,
    }
}

/// "add a scene ... and make it blue": the edit describes the scene the
/// previous request adds, so its attributes and length go to that step.
fn describe_new_scene(ctx: &Ctx, range: &Range<usize>, reading: &Reading, steps: &mut [Step]) {
    let Some(add) = steps.iter_mut().rev().find(|s| s.tool == Tool::AddScene) else { return };
    add.extra_clauses.push(range.clone());
    let attrs = clause::attributes(&ctx.tokens, range, &ctx.mentions.consumed, &reading.timings);
    for (k, v) in attrs {
        add.params.attributes.entry(k).or_insert(v);
    }
    if let Some(s) = reading.lengths.iter().find_map(|d| d.amount.resolve(None)) {
        add.params.duration_seconds = Some(s);
    }
}

/// The length change for the `k`th of `count` targets: the amount paired
/// with its mention ("the testimonials 7 seconds and the call to action 5
/// seconds"), else the clause's `k`th amount when there is one per target,
/// else its first.
fn target_amount(reading: &Reading, per_target: &[Option<Amount>], k: usize, count: usize) -> Option<Amount> {
    let valued = || reading.lengths.iter().map(|d| d.amount).filter(|a| a.has_value());
    per_target
        .get(k)
        .copied()
        .flatten()
        .or_else(|| if valued().count() == count { valued().nth(k) } else { valued().next() })
        .or(reading.lengths.first().map(|d| d.amount))
}

/// Sets a length change's parameters for a scene now `current` seconds
/// long; returns how the step's explanation describes the change.
fn set_length(amount: Option<Amount>, current: Option<f64>, params: &mut ToolParams) -> String {
    let Some(amount) = amount else { return String::new() };
    params.duration_seconds = amount.resolve(current);
    describe_amount(amount, &mut params.attributes);
    match params.duration_seconds {
        Some(s) => format!(" to {} s", duration::format_seconds(s)),
        None => match amount {
            Amount::Shorter => " (shorter)".to_string(),
            Amount::Longer => " (longer)".to_string(),
            _ => " (relative; the current length is unknown)".to_string(),
        },
    }
}

/// Pairs each target of a multi-target length change with its own amount:
/// the duration that follows its mention ("the intro 10 seconds and the
/// ending 4"), a bare number taking the unit of the clause's other amounts.
fn amounts_per_target(
    ctx: &Ctx,
    range: &Range<usize>,
    mentions: &[&Mention],
    targets: &[usize],
    reading: &Reading,
) -> Vec<Option<Amount>> {
    if targets.len() < 2 {
        return Vec::new();
    }
    let has_absolute = reading.lengths.iter().any(|d| matches!(d.amount, Amount::Absolute(_)));
    targets
        .iter()
        .map(|&target| {
            let m = mentions
                .iter()
                .find(|m| !m.reference && matches!(&m.refers, Refers::Scenes(s, _) if s.contains(&target)))?;
            // Only when the mention names this one scene (not "scenes 2 and 3").
            if !matches!(&m.refers, Refers::Scenes(s, _) if s.len() == 1) {
                return None;
            }
            let mut j = m.end;
            if ctx.tokens.get(j).is_some_and(|t| t.is("to")) {
                j += 1;
            }
            if let Some(d) = reading.lengths.iter().find(|d| d.start == j && d.start < range.end) {
                return Some(d.amount);
            }
            let bare = ctx.tokens.get(j).filter(|t| t.kind == lexer::Kind::Number && j < range.end)?;
            let inside_other = reading.lengths.iter().any(|d| d.start <= j && j < d.end);
            (has_absolute && !inside_other).then_some(Amount::Absolute(bare.number?))
        })
        .collect()
}

fn describe_amount(amount: Amount, attrs: &mut BTreeMap<String, String>) {
    match amount {
        Amount::Delta(d) => {
            let sign = if d >= 0.0 { "+" } else { "" };
            attrs.insert("duration_change_seconds".to_string(), format!("{sign}{}", duration::format_seconds(d)));
        }
        Amount::Factor(f) => {
            attrs.insert("duration_factor".to_string(), duration::format_seconds(f));
        }
        Amount::Shorter => {
            attrs.insert("direction".to_string(), "shorter".to_string());
        }
        Amount::Longer => {
            attrs.insert("direction".to_string(), "longer".to_string());
        }
        Amount::Absolute(_) => {}
    }
}

/// An addScene step: its length, position ("after the intro", "at the
/// end"), the scene it copies, and the attributes it names.
fn add_step(
    ctx: &Ctx,
    range: &Range<usize>,
    intent: Intent,
    reading: &Reading,
    mentions: &[&Mention],
    base_confidence: f64,
) -> Step {
    let tokens = &ctx.tokens;
    let mut params = ToolParams {
        attributes: clause::attributes(tokens, range, &ctx.mentions.consumed, &reading.timings),
        duration_seconds: reading.lengths.iter().find_map(|d| match d.amount {
            Amount::Absolute(s) if s > 0.0 => Some(s),
            _ => None,
        }),
        ..ToolParams::default()
    };
    let word = |i: usize| tokens.get(i).filter(|t| t.kind == lexer::Kind::Word).map(|t| t.text.as_str());
    let scene_after = |i: usize| -> Option<&Vec<usize>> {
        mentions.iter().find(|m| m.start > i && m.start <= i + 3).and_then(|m| match &m.refers {
            Refers::Scenes(s, _) => Some(s),
            _ => None,
        })
    };
    for i in range.clone() {
        match word(i) {
            Some("after" | "following") => {
                if let Some(s) = scene_after(i) {
                    params.insert_position = s.iter().max().map(|&p| p as u32 + 1);
                }
            }
            Some("before" | "preceding") => {
                if let Some(s) = scene_after(i) {
                    params.insert_position = s.iter().min().map(|&p| p as u32);
                }
            }
            Some("between") => {
                if let Some(s) = scene_after(i) {
                    params.insert_position = s.iter().min().map(|&p| p as u32 + 1);
                }
            }
            Some("end") if i > 0 && word(i - 1).is_some_and(|w| w == "the" || w == "very") => {
                params.insert_position = Some(ctx.scenes.len() as u32);
            }
            Some("beginning" | "start") if i > 0 && word(i - 1).is_some_and(|w| w == "the" || w == "very") => {
                params.insert_position = Some(0);
            }
            _ => {}
        }
    }
    let mut why = "addScene: the prompt asks for a new scene".to_string();
    if intent == Intent::Duplicate
        && let Some(source) = mentions.iter().find_map(|m| match &m.refers {
            Refers::Scenes(s, _) if s.len() == 1 => s.first().copied(),
            _ => None,
        })
    {
        if let Some(scene) = ctx.scenes.get(source) {
            params.attributes.insert("based_on_scene_id".to_string(), scene.scene_id.clone());
        }
        params.insert_position.get_or_insert(source as u32 + 1);
        why = format!("addScene: a copy of {}", ctx.label(source));
    }
    Step {
        tool: Tool::AddScene,
        target: None,
        complexity: None,
        params,
        clause: range.clone(),
        extra_clauses: Vec::new(),
        confidence: 0.85 + base_confidence,
        why,
        image_clause: clause::mentions_image(tokens, range),
        from_state: reading.from_state,
    }
}

/// Merges neighbouring steps that do the same thing to the same scene
/// ("the hook feels boring, make it pop" is one edit).
fn merge_adjacent(steps: &mut Vec<Step>) {
    let mut merged: Vec<Step> = Vec::with_capacity(steps.len());
    for step in steps.drain(..) {
        if let Some(prev) = merged.last_mut()
            && prev.tool == step.tool
            && prev.target.is_some()
            && prev.target == step.target
        {
            prev.extra_clauses.push(step.clause.clone());
            prev.extra_clauses.extend(step.extra_clauses);
            // A complaint followed by a request ("the pics look washed out, boost
            // the saturation"): the request says how invasive the edit is.
            prev.complexity = match (prev.complexity, step.complexity) {
                (Some(_), Some(b)) if prev.from_state && !step.from_state => Some(b),
                (Some(a), Some(_)) if step.from_state && !prev.from_state => Some(a),
                (Some(a), Some(b)) => Some(stronger(a, b)),
                (a, b) => a.or(b),
            };
            prev.from_state &= step.from_state;
            for (k, v) in step.params.attributes {
                prev.params.attributes.entry(k).or_insert(v);
            }
            prev.params.duration_seconds = prev.params.duration_seconds.or(step.params.duration_seconds);
            prev.confidence = prev.confidence.max(step.confidence);
            prev.image_clause |= step.image_clause;
            continue;
        }
        merged.push(step);
    }
    *steps = merged;
}

fn stronger(a: EditComplexity, b: EditComplexity) -> EditComplexity {
    let rank = |c: EditComplexity| match c {
        EditComplexity::Surgical => 0,
        EditComplexity::Creative => 1,
        EditComplexity::Structural => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Gives attached images to the steps that use them: creates become
/// createSceneFromImage and edits editSceneWithImage, preferring the
/// clauses that mention an image.
fn attach_images(ctx: &Ctx, steps: &mut [Step]) {
    let n = ctx.image_ids.len();
    if n == 0 {
        return;
    }
    let convertible =
        |s: &Step| matches!(s.tool, Tool::AddScene | Tool::EditScene | Tool::AnalyzeImage | Tool::FixBrokenScene);
    let any_marked = steps.iter().any(|s| s.image_clause && convertible(s) && s.tool != Tool::AnalyzeImage);
    let mut first_done = false;
    for step in steps.iter_mut() {
        let takes = match step.tool {
            Tool::AnalyzeImage => true,
            Tool::AddScene | Tool::EditScene => {
                if any_marked {
                    step.image_clause
                } else {
                    !first_done
                }
            }
            Tool::FixBrokenScene => step.image_clause || !any_marked && !first_done,
            _ => false,
        };
        if !takes {
            continue;
        }
        let selection = clause::image_selection(&ctx.tokens, &step.clause, n);
        step.params.image_ids = match selection {
            Some(picked) => picked.iter().filter_map(|&k| ctx.image_ids.get(k).cloned()).collect(),
            None => ctx.image_ids.to_vec(),
        };
        match step.tool {
            Tool::AddScene => {
                step.tool = Tool::CreateSceneFromImage;
                step.why = step.why.replacen("addScene", "createSceneFromImage", 1) + ", from the attached image";
                first_done = true;
            }
            Tool::EditScene => {
                step.tool = Tool::EditSceneWithImage;
                step.why = step.why.replacen("editScene", "editSceneWithImage", 1);
                first_done = true;
            }
            Tool::FixBrokenScene => first_done = true,
            _ => {}
        }
    }
}

fn to_call(ctx: &Ctx, step: &Step) -> ToolCall {
    let mut instruction = ctx.text(&step.clause).to_string();
    for extra in &step.extra_clauses {
        let t = ctx.text(extra);
        if !t.is_empty() {
            instruction.push_str("; ");
            instruction.push_str(t);
        }
    }
    if instruction.is_empty() {
        instruction = ctx.prompt.trim().to_string();
    }
    ToolCall {
        tool: step.tool,
        target_scene_id: step.target.and_then(|k| ctx.scenes.get(k)).map(|s| s.scene_id.clone()),
        complexity: step.complexity,
        params: step.params.clone(),
        instruction,
    }
}

fn finish(ctx: &Ctx, steps: Vec<Step>, truncated: bool) -> Decision {
    let confidence = steps.iter().map(|s| s.confidence).fold(1.0_f64, f64::min).clamp(0.05, 0.99);
    if steps.len() == 1 {
        let step = &steps[0];
        return Decision {
            outcome: Outcome::Tool(to_call(ctx, step)),
            reasoning: format!("{}.", step.why),
            backend: DecisionBackend::Rules,
            fallback_reason: None,
            confidence,
        };
    }
    let whys: Vec<&str> = steps.iter().map(|s| s.why.as_str()).collect();
    let mut reasoning = format!("The prompt asks for {} things, run in order: {}.", steps.len(), whys.join("; then "));
    if truncated {
        reasoning.push_str(&format!(" Only the first {MAX_WORKFLOW_STEPS} requests are planned."));
    }
    let calls = steps.iter().map(|s| to_call(ctx, s)).collect();
    Decision {
        outcome: Outcome::Workflow(calls),
        reasoning,
        backend: DecisionBackend::Rules,
        fallback_reason: None,
        confidence: (confidence * 0.95).clamp(0.05, 0.99),
    }
}

fn clarification(ask: Ask) -> Decision {
    Decision {
        outcome: Outcome::Clarification { question: ask.question, candidate_scene_ids: ask.candidates },
        reasoning: ask.why,
        backend: DecisionBackend::Rules,
        fallback_reason: None,
        confidence: ask.confidence,
    }
}

/// No request in the prompt: analyse attached images, or ask.
fn nothing_asked(ctx: &Ctx) -> Decision {
    if !ctx.image_ids.is_empty() {
        let step = Step {
            tool: Tool::AnalyzeImage,
            target: None,
            complexity: None,
            params: ToolParams { image_ids: ctx.image_ids.to_vec(), ..ToolParams::default() },
            clause: 0..ctx.tokens.len(),
            extra_clauses: Vec::new(),
            confidence: 0.6,
            why: "analyzeImage: images are attached and the prompt asks for nothing else".to_string(),
            image_clause: true,
            from_state: false,
        };
        return finish(ctx, vec![step], false);
    }
    let question = if ctx.scenes.is_empty() {
        "What would you like to do? I can add a scene, or create one from an image you attach.".to_string()
    } else {
        let names: Vec<String> = ctx.scenes.iter().take(8).map(|s| format!("\"{}\"", s.name)).collect();
        format!(
            "What would you like to do? I can add a scene, edit, fix or delete one of {}{}, or change a scene's length.",
            names.join(", "),
            if ctx.scenes.len() > 8 { ", ..." } else { "" }
        )
    };
    Decision {
        outcome: Outcome::Clarification { question, candidate_scene_ids: Vec::new() },
        reasoning: "The prompt asks for nothing the tools can do.".to_string(),
        backend: DecisionBackend::Rules,
        fallback_reason: None,
        confidence: 0.9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::testing::scene;

    fn abc() -> Vec<Scene> {
        vec![scene("s1", "Intro", 0), scene("s2", "Product Demo", 1), scene("s3", "Outro", 2)]
    }

    fn run(prompt: &str, scenes: &[Scene], images: &[&str]) -> Decision {
        let image_ids: Vec<String> = images.iter().map(|s| s.to_string()).collect();
        decide(&DecisionInput { prompt, scenes, image_ids: &image_ids, preferences: &[], enhanced_prompt: "" })
    }

    fn tool(d: &Decision) -> &ToolCall {
        match &d.outcome {
            Outcome::Tool(c) => c,
            other => panic!("expected a tool call, got {other:?}"),
        }
    }

    fn question(d: &Decision) -> (String, Vec<String>) {
        match &d.outcome {
            Outcome::Clarification { question, candidate_scene_ids } => (question.clone(), candidate_scene_ids.clone()),
            other => panic!("expected a clarification, got {other:?}"),
        }
    }

    #[test]
    fn every_decision_is_from_rules_with_a_sentence_and_a_confidence() {
        for p in ["delete scene 2", "hmm", "add an intro and then make the outro shorter", "make the text red", ""] {
            let d = run(p, &abc(), &[]);
            assert_eq!(d.backend, DecisionBackend::Rules);
            assert_eq!(d.fallback_reason, None);
            assert!(d.confidence > 0.0 && d.confidence < 1.0, "{p}: {}", d.confidence);
            assert!(d.reasoning.ends_with('.') && !d.reasoning.is_empty(), "{p}: {}", d.reasoning);
        }
    }

    #[test]
    fn deterministic() {
        let p = "first delete the outro, then add a scene with our logo, and finally make the intro 5 seconds";
        assert_eq!(run(p, &abc(), &["i1"]), run(p, &abc(), &["i1"]));
    }

    #[test]
    fn ambiguous_target_asks_and_names_the_candidates() {
        let d = run("make the text red", &abc(), &[]);
        let (q, c) = question(&d);
        assert!(q.contains("\"Intro\"") && q.contains("\"Product Demo\"") && q.contains("\"Outro\""), "{q}");
        assert!(q.starts_with("Which scene should I edit"), "{q}");
        assert_eq!(c, ["s1", "s2", "s3"]);
    }

    #[test]
    fn missing_targets_say_what_is_missing() {
        let (q, c) = question(&run("delete scene 5", &abc(), &[]));
        assert!(q.contains("no scene 5") && q.contains("3 scenes"), "{q}");
        assert_eq!(c.len(), 3);
        let (q, _) = question(&run("delete the pricing scene", &abc(), &[]));
        assert!(q.contains("\"pricing\""), "{q}");
        let (q, c) = question(&run("delete the last scene", &[], &[]));
        assert!(q.contains("no scenes"), "{q}");
        assert!(c.is_empty());
    }

    #[test]
    fn nothing_asked_asks_what_to_do() {
        for p in ["hi", "thanks!", "hmm", "", "   ", "?!", "ok cool"] {
            let (q, c) = question(&run(p, &abc(), &[]));
            assert!(q.starts_with("What would you like to do?"), "{p}: {q}");
            assert!(c.is_empty());
        }
    }

    #[test]
    fn fix_without_a_target_picks_the_only_broken_scene() {
        let mut s = abc();
        s[2].status = SceneStatus::Broken;
        assert_eq!(tool(&run("fix it", &s, &[])).target_scene_id.as_deref(), Some("s3"));
        s[0].status = SceneStatus::Broken;
        let (_, c) = question(&run("fix it", &s, &[]));
        assert_eq!(c, ["s1", "s3"]);
    }

    #[test]
    fn images_become_image_tools_with_their_ids() {
        let d = run("build a new scene from these mockups", &abc(), &["i1", "i2"]);
        let call = tool(&d);
        assert_eq!(call.tool, Tool::CreateSceneFromImage);
        assert_eq!(call.params.image_ids, ["i1", "i2"]);

        let d = run("make the intro match the colors of this image", &abc(), &["i1"]);
        let call = tool(&d);
        assert_eq!((call.tool, call.target_scene_id.as_deref()), (Tool::EditSceneWithImage, Some("s1")));
        assert_eq!(call.params.image_ids, ["i1"]);

        let d = run("what colors are used in this image?", &abc(), &["i1"]);
        assert_eq!(tool(&d).tool, Tool::AnalyzeImage);
        assert_eq!(tool(&d).params.image_ids, ["i1"]);

        let d = run(
            "make a scene from the first image and use the second one as the outro background",
            &abc(),
            &["a", "b"],
        );
        let Outcome::Workflow(steps) = &d.outcome else { panic!("{d:?}") };
        assert_eq!(steps[0].params.image_ids, ["a"]);
        assert_eq!(steps[1].params.image_ids, ["b"]);
        assert_eq!(steps[1].target_scene_id.as_deref(), Some("s3"));

        // Deleting does not use the image.
        assert!(tool(&run("delete the outro", &abc(), &["i1"])).params.image_ids.is_empty());
    }

    #[test]
    fn attributes_and_durations_are_read() {
        let call = tool(&run("make the intro background dark blue", &abc(), &[])).clone();
        assert_eq!(call.params.attributes.get("color").map(String::as_str), Some("dark blue"));
        assert_eq!(call.params.attributes.get("element").map(String::as_str), Some("background"));
        let call = tool(&run("change the headline text in scene 2 to 'Ship faster'", &abc(), &[])).clone();
        assert_eq!(call.params.attributes.get("text").map(String::as_str), Some("Ship faster"));
        assert_eq!(call.instruction, "change the headline text in scene 2 to 'Ship faster'");
        let call = tool(&run("make the intro half a minute", &abc(), &[])).clone();
        assert_eq!((call.tool, call.params.duration_seconds), (Tool::ChangeDuration, Some(30.0)));
        let call = tool(&run("make the outro shorter", &abc(), &[])).clone();
        assert_eq!(call.params.duration_seconds, None);
        assert_eq!(call.params.attributes.get("direction").map(String::as_str), Some("shorter"));
    }

    #[test]
    fn new_scenes_get_a_position_and_a_source() {
        let p = |prompt: &str| tool(&run(prompt, &abc(), &[])).params.insert_position;
        assert_eq!(p("add a scene about pricing after the intro"), Some(1));
        assert_eq!(p("add a scene about pricing before the outro"), Some(2));
        assert_eq!(p("add a scene about pricing at the beginning"), Some(0));
        assert_eq!(p("add a scene about pricing at the end"), Some(3));
        assert_eq!(p("add a scene about pricing"), None);
        let call = tool(&run("duplicate the product demo", &abc(), &[])).clone();
        assert_eq!(call.tool, Tool::AddScene);
        assert_eq!(call.params.attributes.get("based_on_scene_id").map(String::as_str), Some("s2"));
        assert_eq!(call.params.insert_position, Some(2));
    }

    #[test]
    fn an_edit_after_an_add_describes_the_new_scene() {
        let d = run("add a scene with our logo and make it 5 seconds", &abc(), &[]);
        let call = tool(&d);
        assert_eq!((call.tool, call.params.duration_seconds), (Tool::AddScene, Some(5.0)));
    }

    #[test]
    fn pronouns_follow_the_previous_request() {
        let d = run("make the second scene 4 seconds long and change its title color to white", &abc(), &[]);
        let Outcome::Workflow(steps) = &d.outcome else { panic!("{d:?}") };
        assert_eq!(steps.len(), 2);
        assert!(steps.iter().all(|s| s.target_scene_id.as_deref() == Some("s2")));
        assert_eq!(steps[1].params.attributes.get("color").map(String::as_str), Some("white"));
    }

    #[test]
    fn long_and_odd_prompts_do_not_panic_and_workflows_are_capped() {
        let long = "delete scene 2 and then add a scene about pricing. ".repeat(700);
        assert!(long.len() > 32 * 1024);
        let d = run(&long, &abc(), &[]);
        let Outcome::Workflow(steps) = &d.outcome else { panic!("{:?}", d.outcome) };
        assert!(steps.len() <= MAX_WORKFLOW_STEPS);
        assert!(d.reasoning.contains("Only the first"));
        let odd = [
            "'",
            "\"",
            "''''",
            "“",
            "#",
            "-",
            "1:",
            ":30",
            "scene",
            "scene #",
            "the the the",
            "🎬🎬 make it 🔥",
            "שנה את הסצנה",
            "make scene 99999999999999999999 blue",
            "make it 1e308 seconds",
            "make it -5 seconds",
            "\u{0}\u{1}",
            "make the intro 0 seconds",
            "scene 0",
            "the 0th scene",
            "a a a a second",
        ];
        for p in odd {
            let d = run(p, &abc(), &["i1"]);
            if let Outcome::Tool(c) = &d.outcome {
                assert!(c.params.duration_seconds.is_none_or(|s| s.is_finite() && s > 0.0), "{p}: {c:?}");
            }
            for cut in 0..=p.len() {
                if p.is_char_boundary(cut) {
                    run(&p[..cut], &abc(), &[]);
                }
            }
        }
    }

    #[test]
    fn exclusions_counts_and_reordering() {
        let d = run("delete all scenes except the intro", &abc(), &[]);
        let Outcome::Workflow(steps) = &d.outcome else { panic!("{d:?}") };
        let targets: Vec<_> = steps.iter().map(|s| s.target_scene_id.as_deref()).collect();
        assert_eq!(targets, [Some("s2"), Some("s3")]);

        let d = run("create 3 scenes for our onboarding flow", &abc(), &[]);
        let Outcome::Workflow(steps) = &d.outcome else { panic!("{d:?}") };
        assert_eq!(steps.len(), 3);
        assert!(steps.iter().all(|s| s.tool == Tool::AddScene));

        let (q, c) = question(&run("move the outro before the intro", &abc(), &[]));
        assert!(q.contains("order"), "{q}");
        assert_eq!(c, ["s3", "s1"]);
    }

    #[test]
    fn common_words_are_not_typos_of_names() {
        // "into" is one edit from "intro" but is a word of its own.
        let (_, c) = question(&run("turn this into a video", &abc(), &[]));
        assert_eq!(c.len(), 3);
        assert_eq!(tool(&run("make scene 2's logo bigger", &abc(), &[])).target_scene_id.as_deref(), Some("s2"));
    }

    #[tokio::test]
    async fn the_decider_trait_runs_the_rules() {
        let decider: &dyn Decider = &RulesDecider;
        let scenes = abc();
        let input = DecisionInput {
            prompt: "remove scene 2",
            scenes: &scenes,
            image_ids: &[],
            preferences: &[],
            enhanced_prompt: "",
        };
        let d = decider.decide(&input).await;
        assert_eq!(tool(&d).tool, Tool::DeleteScene);
        assert_eq!(tool(&d).target_scene_id.as_deref(), Some("s2"));
    }
}
