"""OpenAQA-style question-answer tuples from exact clip metadata (pure functions, no I/O but
the optional language-model client): facts, question families, splits, records, exports."""

from pipelines.qa.facts import CONVENTION, EventFact, Facts, extract_facts
from pipelines.qa.families import FAMILIES, QA, Context, generate
from pipelines.qa.lm import LmConfig, contradiction, facts_prompt, parse
from pipelines.qa.ontology import Ontology
from pipelines.qa.records import LTU_KEYS, SPATIAL_KEYS, features, ltu_record, spatial_record, to_rows, write_json
from pipelines.qa.splits import Clip, assign_splits

__all__ = [
    "CONVENTION", "FAMILIES", "LTU_KEYS", "QA", "SPATIAL_KEYS", "Clip", "Context", "EventFact", "Facts", "LmConfig",
    "Ontology", "assign_splits", "contradiction", "extract_facts", "facts_prompt", "features", "generate",
    "ltu_record", "parse", "spatial_record", "to_rows", "write_json",
]
