"""The generated world: scenes, queries and splits whose information boundaries are known.

A scene is a 32x32 RGB image with a 2x2 grid of cells; each occupied cell holds one object with
a colour and a shape. Every (colour, shape) pair is an *entity* with a made-up fact (the city
it comes from). Because we generate everything, each query row records what a real benchmark
hides: whether the image can answer it (extrinsic boundary) and how often its fact was shown to
the base model (intrinsic boundary in knowledge).

Splits:
  base_train  answerable perception and knowledge queries only; fact exposure is long-tailed
  probe       the InBoL training split: every family, minus held-out entities and constructions;
              halved (`probe_half`): half A trains IDK-IT, half B is where preference pairs
              come from, so the preference stage never sees prompts IDK-IT has fitted
  validation  built like the test split, disjoint from it: every choice of hyperparameters and
              checkpoints is made here, so the test splits are read once, for the final tables
  test        in-domain test, held-out entities and constructions included
  ood         out-of-domain test: new phrasings, a shifted rendering, real handwritten digits
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from .runner import profiling
from .artifacts import atomic_dir, require

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (240, 140, 30),
    "yellow": (235, 225, 50),
    "green": (40, 180, 60),
    "blue": (50, 90, 230),
    "purple": (150, 60, 200),
}
SHAPES = ("circle", "square", "triangle", "cross")
CELLS = ("top left", "top right", "bottom left", "bottom right")
CITIES = (
    "velmora", "tarsk", "quillon", "brenhal", "ostavia", "mirren",
    "caldor", "ysolde", "pentra", "garrow", "lumenor", "zarith",
)
IMAGE_SIZE = 32
CELL_SIZE = IMAGE_SIZE // 2
SUPERSAMPLE = 4  # draw at 4x and downsample, so small shapes stay recognisable

# Question phrasings. In-domain ones are what the base model and InBoL training see; the OOD
# ones reorder the same words (part of the out-of-domain shift). New words would not test a
# shift but a vocabulary: their embeddings were never trained. The questions are American
# English ("what color"), and so are the question types named after them (color,
# color_of_shape); the code and the book say colour.
PHRASINGS: dict[str, dict[str, str]] = {
    "in_domain": {
        "color": "what color is the object in the {cell}",
        "shape": "what shape is the object in the {cell}",
        "count": "how many objects are there",
        "where": "where is the {colour} {shape}",
        "color_of_shape": "what color is the {shape} in the {cell}",
        "fact": "which city does the object in the {cell} come from",
        "identify": "what is in the {cell}",
    },
    "ood": {  # the same words in new orders: a change of syntax the base model never saw
        "color": "the object in the {cell} is what color",
        "shape": "the object in the {cell} is what shape",
        "count": "there are how many objects",
        "where": "the {colour} {shape} is where",
        "color_of_shape": "the {shape} in the {cell} is what color",
        "fact": "the object in the {cell} does come from which city",
        "identify": "in the {cell} is what",
    },
}
SPLITS = ("base_train", "probe", "validation", "test", "ood")  # what every source builds
EXTRINSIC_CONSTRUCTIONS = ("absent_cell", "absent_object", "blank", "noise", "occluded", "swapped")
REGIONS = ("inside", "beyond-intrinsic", "beyond-extrinsic")
# The ground truth of an answerable query of a real dataset: no benchmark says whether the model
# could know it, so its side of the intrinsic boundary is not known (see real_data).
REGION_UNKNOWN = "unknown"
TRUTHS = (*REGIONS, REGION_UNKNOWN)
# The chapters' difficulty bands, each by its upper edge; base models must master the easy one (`base_targets`).
DIFFICULTY_BANDS = {"easy": 1 / 3, "medium": 2 / 3, "hard": 1.0}


def difficulty_band(difficulty: pd.Series) -> pd.Series:
    """Each scene's difficulty band (`DIFFICULTY_BANDS`): the chapters group accuracy and
    confidence by it."""
    return pd.cut(difficulty, [0, *DIFFICULTY_BANDS.values()], labels=list(DIFFICULTY_BANDS), include_lowest=True)


FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "image": datasets.Image(),
        "question": datasets.Value("string"),
        "answers": datasets.Sequence(datasets.Value("string")),
        "family": datasets.Value("string"),  # perception | knowledge | unanswerable
        "qtype": datasets.Value("string"),  # color | shape | count | where | color_of_shape | fact
        "construction": datasets.Value("string"),  # none, or one of EXTRINSIC_CONSTRUCTIONS / digits
        "region_truth": datasets.Value("string"),  # one of TRUTHS (REGIONS, or unknown: real data)
        "exposure": datasets.Value("int32"),  # base-train rows showing the fact; -1: no fact
        "entity": datasets.Value("string"),  # "red circle", or "" when no entity is involved
        "difficulty": datasets.Value("float32"),
        "heldout": datasets.Value("bool"),  # entity or construction never in the probe split
    }
)


@dataclass(frozen=True)
class WorldConfig:
    """Everything that shapes the world; the same config and seed give the same world."""

    seed: int = 0
    n_base_perception: int = 24000
    n_probe: int = 3000
    n_test: int = 2000
    n_ood: int = 1000
    n_validation: int = 1000
    exposure_levels: tuple[int, ...] = (100, 30, 10, 3, 1, 0)  # relative fact frequency tiers
    fact_scale: float = 1.0  # base-train rows per unit of exposure level
    max_difficulty: float = 1.0
    # Knowledge queries show their entity clearly: what limits them should be memory, not sight.
    knowledge_max_difficulty: float = 0.3
    unanswerable_share: float = 0.3  # of probe/test/ood rows
    knowledge_share: float = 0.3  # of probe/test/ood rows
    heldout_constructions: tuple[str, ...] = ("occluded",)
    heldout_per_tier: int = 1  # entities per exposure tier held out of the probe split

    def fact_rows(self, level: int) -> int:
        """How many base-train rows show a fact of this exposure level (0: never shown)."""
        return round(level * self.fact_scale)

    @property
    def frequent_exposure(self) -> int:
        """The exposure of the facts of the two most often shown tiers (at least one row): the
        facts a base model must have learnt (`base_targets`)."""
        return max(1, self.fact_rows(self.exposure_levels[1]))

    def __post_init__(self) -> None:
        sizes = {k: getattr(self, k) for k in ("n_base_perception", "n_probe", "n_test", "n_ood",
                                               "n_validation")}
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be a positive number of queries, got {value}")
        for name in ("max_difficulty", "knowledge_max_difficulty", "unanswerable_share", "knowledge_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.unanswerable_share + self.knowledge_share > 1:
            raise ValueError("unanswerable_share + knowledge_share must not exceed 1")
        if self.fact_scale < 0 or min(self.exposure_levels) < 0:
            raise ValueError("fact_scale and exposure_levels must be non-negative")
        unknown = set(self.heldout_constructions) - set(EXTRINSIC_CONSTRUCTIONS)
        if unknown:
            raise ValueError(f"unknown heldout_constructions {sorted(unknown)}; "
                             f"choose from {EXTRINSIC_CONSTRUCTIONS}")


@dataclass
class Object:
    colour: str
    shape: str
    cell: int

    @property
    def entity(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class Scene:
    objects: list[Object]
    difficulty: float
    background: tuple[int, int, int] = (0, 0, 0)
    jitter: tuple[int, int] = (0, 0)  # OOD: objects shifted inside their cells
    occluded_cell: int | None = None
    content: str = "scene"  # scene | blank | noise | digits
    image: Image.Image | None = None  # a ready-made image (digits), drawn as is

    def object_at(self, cell: int) -> Object | None:
        return next((o for o in self.objects if o.cell == cell), None)


@dataclass
class Facts:
    """Entity -> city, and entity -> exposure tier; drawn once per world seed."""

    city: dict[str, str]
    level: dict[str, int]
    heldout: set[str] = field(default_factory=set)


def all_entities() -> list[str]:
    return [f"{c} {s}" for c in COLOURS for s in SHAPES]


def make_facts(cfg: WorldConfig) -> Facts:
    """Assign each entity a city and an exposure tier (equal numbers per tier), and hold out
    `heldout_per_tier` entities of every tier from the probe split.

    Never-shown entities get cities that no shown entity has (the cities are split between the
    two groups in proportion to their sizes). Otherwise a never-shown fact could be answered
    right by borrowing a shown entity's city, and with only a few such entities one coincidence
    moves the tier's accuracy by tens of points: the tier would not be the sharp boundary that
    "never shown" promises.
    """
    rng = np.random.default_rng([cfg.seed, 1])
    entities = all_entities()
    order = rng.permutation(len(entities))
    per_tier = len(entities) // len(cfg.exposure_levels)
    level, heldout = {}, set()
    for rank, idx in enumerate(order):
        tier = min(rank // per_tier, len(cfg.exposure_levels) - 1)
        level[entities[idx]] = cfg.exposure_levels[tier]
        if rank % per_tier < cfg.heldout_per_tier:
            heldout.add(entities[idx])
    unseen = [e for e in entities if cfg.fact_rows(level[e]) == 0]
    seen = [e for e in entities if e not in unseen]
    n_reserved = round(len(CITIES) * len(unseen) / len(entities))
    if seen and unseen:
        n_reserved = min(max(n_reserved, 1), len(CITIES) - 1)
    pool = [CITIES[i] for i in rng.permutation(len(CITIES))]
    reserved, common = pool[:n_reserved], pool[n_reserved:]
    city = {e: str(rng.choice(common)) for e in seen} | {e: str(rng.choice(reserved)) for e in unseen}
    return Facts({e: city[e] for e in entities}, level, heldout)


# ----------------------------------------------------------------------------- rendering


def _shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r * 0.85), (cx - r, cy + r * 0.85)]
    if shape == "square":
        return [(cx - r * 0.85, cy - r * 0.85), (cx + r * 0.85, cy - r * 0.85),
                (cx + r * 0.85, cy + r * 0.85), (cx - r * 0.85, cy + r * 0.85)]
    if shape == "cross":
        a, b = r, r * 0.35
        return [(cx - b, cy - a), (cx + b, cy - a), (cx + b, cy - b), (cx + a, cy - b),
                (cx + a, cy + b), (cx + b, cy + b), (cx + b, cy + a), (cx - b, cy + a),
                (cx - b, cy + b), (cx - a, cy + b), (cx - a, cy - b), (cx - b, cy - b)]
    raise ValueError(f"unknown shape {shape!r}")


def render(scene: Scene, rng: np.random.Generator) -> Image.Image:
    """Draw a scene. Difficulty shrinks objects, fades them toward the background and adds
    pixel noise: the knob that puts some perception queries beyond the model's ability."""
    if scene.content == "noise":
        return Image.fromarray(rng.integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8))
    big = IMAGE_SIZE * SUPERSAMPLE
    canvas = Image.new("RGB", (big, big), scene.background)
    if scene.content == "scene":
        d = scene.difficulty
        draw = ImageDraw.Draw(canvas)
        radius = (6.5 - 4.0 * d) * SUPERSAMPLE
        alpha = 1.0 - 0.75 * d
        for obj in scene.objects:
            row, col = divmod(obj.cell, 2)
            cx = (col * CELL_SIZE + CELL_SIZE / 2 + scene.jitter[0]) * SUPERSAMPLE
            cy = (row * CELL_SIZE + CELL_SIZE / 2 + scene.jitter[1]) * SUPERSAMPLE
            fill = tuple(int(alpha * c + (1 - alpha) * b)
                         for c, b in zip(COLOURS[obj.colour], scene.background))
            if obj.shape == "circle":
                draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
            else:
                draw.polygon(_shape_polygon(obj.shape, cx, cy, radius), fill=fill)
    image = canvas.reduce(SUPERSAMPLE)  # box-filter downsampling: anti-aliased edges
    pixels = np.asarray(image).astype(np.float32)
    if scene.content == "scene" and scene.difficulty > 0:
        pixels += rng.normal(0, 55 * scene.difficulty, pixels.shape)
    if scene.occluded_cell is not None:
        row, col = divmod(scene.occluded_cell, 2)
        pixels[row * CELL_SIZE:(row + 1) * CELL_SIZE, col * CELL_SIZE:(col + 1) * CELL_SIZE] = 128
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


# ----------------------------------------------------------------------------- queries


def random_scene(rng: np.random.Generator, cfg: WorldConfig, must_have: str | None = None,
                 exclude: set[str] = frozenset(), ood: bool = False,
                 max_difficulty: float | None = None) -> Scene:
    """1-4 objects with distinct entities in distinct cells; `must_have` forces an entity in."""
    entities = [e for e in all_entities() if e not in exclude and e != must_have]
    n = int(rng.integers(1, 5))
    chosen = [entities[i] for i in rng.choice(len(entities), size=n, replace=False)]
    if must_have is not None:
        chosen[0] = must_have
    cells = rng.permutation(4)[:n]
    objects = [Object(*e.split(" "), cell=int(c)) for e, c in zip(chosen, cells)]
    top = cfg.max_difficulty if max_difficulty is None else min(max_difficulty, cfg.max_difficulty)
    scene = Scene(objects, difficulty=float(rng.uniform(0, top)))
    if ood:  # visual shift: a blue-grey background and objects off-centre in their cells
        scene.background = (45, 50, 80)
        scene.jitter = tuple(int(v) for v in rng.integers(-2, 3, size=2))
    return scene


@dataclass
class Asked:
    """A question of the row schema and what answers it, generated or real (`real_data`)."""
    question: str
    answers: list[str]
    family: str
    qtype: str
    construction: str = "none"
    entity: str = ""


@dataclass
class Query(Asked):
    """A question about a scene of this world."""
    scene: Scene = field(kw_only=True)


def answerable_query(rng: np.random.Generator, scene: Scene, qtype: str, phr: dict[str, str],
                     facts: Facts) -> Query:
    """A perception or knowledge query about an object that is in the scene."""
    obj = scene.objects[int(rng.integers(len(scene.objects)))]
    cell = CELLS[obj.cell]
    if qtype == "count":
        return Query(phr["count"], [str(len(scene.objects))], "perception", "count", scene=scene)
    if qtype == "where":
        q = phr["where"].format(colour=obj.colour, shape=obj.shape)
        return Query(q, [cell], "perception", "where", entity=obj.entity, scene=scene)
    if qtype == "color_of_shape":
        q = phr["color_of_shape"].format(shape=obj.shape, cell=cell)
        return Query(q, [obj.colour], "perception", qtype, entity=obj.entity, scene=scene)
    if qtype == "identify":
        return Query(phr["identify"].format(cell=cell), [obj.entity], "perception", qtype,
                     entity=obj.entity, scene=scene)
    if qtype == "fact":
        q = phr["fact"].format(cell=cell)
        return Query(q, [facts.city[obj.entity]], "knowledge", "fact", entity=obj.entity, scene=scene)
    answer = obj.colour if qtype == "color" else obj.shape
    return Query(phr[qtype].format(cell=cell), [answer], "perception", qtype,
                 entity=obj.entity, scene=scene)


def unanswerable_query(rng: np.random.Generator, construction: str, cfg: WorldConfig,
                       phr: dict[str, str], exclude: set[str], ood: bool) -> Query:
    """A query whose answer the image does not contain. Gold: refuse (no answers)."""
    scene = random_scene(rng, cfg, exclude=exclude, ood=ood)
    cell_qtype = ("color", "shape", "identify", "fact")[int(rng.integers(4))]
    if construction in ("blank", "noise"):
        scene.content = construction
        cell = int(rng.integers(4))
        return Query(phr[cell_qtype].format(cell=CELLS[cell]), [], "unanswerable",
                     cell_qtype, construction, scene=scene)
    if construction == "absent_cell":
        while len(scene.objects) == 4:
            scene.objects.pop(int(rng.integers(4)))
        empty = [c for c in range(4) if scene.object_at(c) is None]
        cell = int(rng.choice(empty))
        return Query(phr[cell_qtype].format(cell=CELLS[cell]), [], "unanswerable",
                     cell_qtype, construction, scene=scene)
    if construction == "absent_object":
        present = {o.entity for o in scene.objects}
        missing = [e for e in all_entities() if e not in present and e not in exclude]
        colour, shape = missing[int(rng.integers(len(missing)))].split(" ")
        return Query(phr["where"].format(colour=colour, shape=shape), [], "unanswerable",
                     "where", construction, entity=f"{colour} {shape}", scene=scene)
    if construction == "occluded":
        obj = scene.objects[int(rng.integers(len(scene.objects)))]
        scene.occluded_cell = obj.cell
        return Query(phr[cell_qtype].format(cell=CELLS[obj.cell]), [], "unanswerable",
                     cell_qtype, construction, entity=obj.entity, scene=scene)
    if construction == "swapped":
        # The question is about scene A ("the <shape> in the <cell>"); the image is scene B,
        # whose cell is empty or holds another shape, so the question's premise is not visible.
        asked = scene.objects[0]
        other = random_scene(rng, cfg, exclude=exclude, ood=ood)
        other.objects = [o for o in other.objects
                         if o.cell != asked.cell or o.shape != asked.shape]
        if not other.objects:
            other.objects = [Object(asked.colour, SHAPES[(SHAPES.index(asked.shape) + 1) % 4],
                                    (asked.cell + 1) % 4)]
        q = phr["color_of_shape"].format(shape=asked.shape, cell=CELLS[asked.cell])
        return Query(q, [], "unanswerable", "color_of_shape", construction, scene=other)
    raise ValueError(f"unknown construction {construction!r}; known: {EXTRINSIC_CONSTRUCTIONS}")


def digits_queries(rng: np.random.Generator, n: int, phr: dict[str, str]) -> list[Query]:
    """OOD images no one here drew: scikit-learn's bundled handwritten digits, tinted and
    upscaled. No coloured shapes exist in them, so every question about one is unanswerable."""
    from sklearn.datasets import load_digits

    digits = load_digits().images  # (1797, 8, 8), values 0..16, ships with scikit-learn
    queries = []
    for _ in range(n):
        img = digits[int(rng.integers(len(digits)))] / 16.0
        tint = np.array(COLOURS[list(COLOURS)[int(rng.integers(len(COLOURS)))]], np.float32)
        pixels = np.kron(img, np.ones((4, 4)))[..., None] * tint
        scene = Scene([], difficulty=0.0, content="digits",
                      image=Image.fromarray(pixels.astype(np.uint8)))
        qtype = ("color", "shape", "identify", "fact")[int(rng.integers(4))]
        cell = CELLS[int(rng.integers(4))]
        queries.append(Query(phr[qtype].format(cell=cell), [], "unanswerable", qtype,
                             "digits", scene=scene))
    return queries


def region_of(query: Query, exposure: dict[str, int]) -> str:
    if query.family == "unanswerable":
        return "beyond-extrinsic"
    if query.family == "knowledge" and exposure[query.entity] == 0:
        return "beyond-intrinsic"  # the fact was never shown: no model could know it
    return "inside"


# ----------------------------------------------------------------------------- splits


def _rows(queries: list[Query], facts: Facts, exposure: dict[str, int], split: str,
          heldout_constructions: tuple[str, ...], rng: np.random.Generator) -> dict[str, list]:
    rows: dict[str, list] = {name: [] for name in FEATURES}
    for i, q in enumerate(queries):
        image = q.scene.image or render(q.scene, rng)
        heldout = q.construction in heldout_constructions or (
            q.family == "knowledge" and q.entity in facts.heldout)
        for key, value in (
            ("id", f"{split}-{i:06d}"), ("image", image), ("question", q.question),
            ("answers", q.answers), ("family", q.family), ("qtype", q.qtype),
            ("construction", q.construction), ("region_truth", region_of(q, exposure)),
            ("exposure", exposure[q.entity] if q.qtype == "fact" and q.answers else -1),
            ("entity", q.entity), ("difficulty", q.scene.difficulty), ("heldout", heldout),
        ):
            rows[key].append(value)
    return rows


PERCEPTION_QTYPES = ("color", "shape", "count", "where", "color_of_shape", "identify")


def base_train_queries(rng: np.random.Generator, cfg: WorldConfig, facts: Facts) -> list[Query]:
    """Answerable queries only (the base model never sees a refusal). Each entity's fact is
    shown `round(level * fact_scale)` times: a long tail that includes never-shown facts."""
    phr = PHRASINGS["in_domain"]
    queries = []
    for _ in range(cfg.n_base_perception):
        qtype = PERCEPTION_QTYPES[int(rng.integers(len(PERCEPTION_QTYPES)))]
        queries.append(answerable_query(rng, random_scene(rng, cfg), qtype, phr, facts))
    for entity, level in facts.level.items():
        for _ in range(cfg.fact_rows(level)):
            scene = random_scene(rng, cfg, must_have=entity,
                                 max_difficulty=cfg.knowledge_max_difficulty)
            obj = scene.objects[0]
            q = phr["fact"].format(cell=CELLS[obj.cell])
            queries.append(Query(q, [facts.city[entity]], "knowledge", "fact", entity=entity, scene=scene))
    return [queries[i] for i in rng.permutation(len(queries))]


def mixed_queries(rng: np.random.Generator, cfg: WorldConfig, facts: Facts, n: int,
                  phrasing: str, constructions: tuple[str, ...], exclude: set[str],
                  ood: bool) -> list[Query]:
    """Perception, knowledge (entities drawn uniformly, so every exposure tier is present) and
    extrinsic-unanswerable queries in the configured shares."""
    phr = PHRASINGS[phrasing]
    n_unans = round(n * cfg.unanswerable_share)
    n_know = round(n * cfg.knowledge_share)
    entities = [e for e in all_entities() if e not in exclude]
    queries = []
    for i in range(n):
        if i < n_unans:
            construction = constructions[i % len(constructions)]
            if construction == "digits":
                queries += digits_queries(rng, 1, phr)
            else:
                queries.append(unanswerable_query(rng, construction, cfg, phr, exclude, ood))
        elif i < n_unans + n_know:
            entity = entities[int(rng.integers(len(entities)))]
            scene = random_scene(rng, cfg, must_have=entity, exclude=exclude, ood=ood,
                                 max_difficulty=cfg.knowledge_max_difficulty)
            q = phr["fact"].format(cell=CELLS[scene.objects[0].cell])
            queries.append(Query(q, [facts.city[entity]], "knowledge", "fact", entity=entity, scene=scene))
        else:
            scene = random_scene(rng, cfg, exclude=exclude, ood=ood)
            qtype = PERCEPTION_QTYPES[int(rng.integers(len(PERCEPTION_QTYPES)))]
            queries.append(answerable_query(rng, scene, qtype, phr, facts))
    return [queries[i] for i in rng.permutation(len(queries))]


@profiling.part("data building")
def build_world(cfg: WorldConfig) -> tuple[dict[str, datasets.Dataset], Facts]:
    """Generate all five splits. Deterministic: each split has its own seeded stream."""
    facts = make_facts(cfg)
    base_q = base_train_queries(np.random.default_rng([cfg.seed, 2]), cfg, facts)
    exposure = {e: 0 for e in all_entities()}
    for q in base_q:
        if q.qtype == "fact":
            exposure[q.entity] += 1
    in_domain = EXTRINSIC_CONSTRUCTIONS
    probe_constructions = tuple(c for c in in_domain if c not in cfg.heldout_constructions)
    plans = {
        "base_train": base_q,
        "probe": mixed_queries(np.random.default_rng([cfg.seed, 3]), cfg, facts, cfg.n_probe,
                               "in_domain", probe_constructions, facts.heldout, ood=False),
        "test": mixed_queries(np.random.default_rng([cfg.seed, 4]), cfg, facts, cfg.n_test,
                              "in_domain", in_domain, set(), ood=False),
        "ood": mixed_queries(np.random.default_rng([cfg.seed, 5]), cfg, facts, cfg.n_ood,
                             "ood", in_domain + ("digits",), set(), ood=True),
        # Last, so that adding it left the other splits' random streams as they were.
        "validation": mixed_queries(np.random.default_rng([cfg.seed, 6]), cfg, facts,
                                    cfg.n_validation, "in_domain", in_domain, set(), ood=False),
    }
    splits = {}
    for i, (name, queries) in enumerate(plans.items()):
        rows = _rows(queries, facts, exposure, name, cfg.heldout_constructions,
                     np.random.default_rng([cfg.seed, 10 + i]))
        splits[name] = datasets.Dataset.from_dict(rows, features=FEATURES)
    return splits, facts


def save_world(splits: dict[str, datasets.Dataset], facts: Facts | None, path: str | Path,
               extra: dict[str, dict] | None = None) -> None:
    """Write the splits (datasets, images as PNG), the fact table (a generated world's) and
    any `extra` records (file name -> JSON), atomically."""
    import json

    files = dict(extra or {})
    if facts is not None:
        files["facts.json"] = {"city": facts.city, "level": facts.level, "heldout": sorted(facts.heldout)}
    with atomic_dir(path) as tmp:
        for name, ds in splits.items():
            ds.save_to_disk(str(tmp / name))
        for name, record in files.items():
            (tmp / name).write_text(json.dumps(record, indent=2, sort_keys=True))


def select_ids(ds: datasets.Dataset, ids) -> datasets.Dataset:
    """The rows of `ds` with these ids, in this order (ids, not positions, survive filtering)."""
    position = {i: k for k, i in enumerate(ds["id"])}
    return ds.select([position[i] for i in ids])


PROBE_HALVES = ("A", "B")


def probe_half(probe: datasets.Dataset, half: str) -> datasets.Dataset:
    """Half A (the first half of the probe split) or half B (the rest). The split's rows are
    in random order already, so this is a random halving that every notebook agrees on."""
    if half not in PROBE_HALVES:
        raise ValueError(f"half must be one of {PROBE_HALVES}, got {half!r}")
    middle = len(probe) // 2
    return probe.select(range(middle) if half == "A" else range(middle, len(probe)))


def load_split(path: str | Path, split: str) -> datasets.Dataset:
    folder = require(Path(path) / split, "notebook 00 (world and base model)")
    return datasets.load_from_disk(str(folder))


def split_frame(ds: datasets.Dataset) -> pd.DataFrame:
    """A split's columns without the images, plus `answerable` (the query has a gold answer)."""
    df = ds.remove_columns("image").to_pandas()
    df["answers"] = df["answers"].map(list)
    df["answerable"] = df["answers"].map(len) > 0
    return df


def world_words() -> set[str]:
    """Every word a question or an answer of this world can contain (for the tokenizer)."""
    texts = [t for phr in PHRASINGS.values() for t in phr.values()]
    texts += list(COLOURS) + list(SHAPES) + list(CELLS) + list(CITIES) + [str(i) for i in range(10)]
    return {w for t in texts for w in t.split() if not w.startswith("{")}
