"""The simple view: what to deploy, a few figures, why, and how."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from cvplatform.reports import charts
from cvplatform.reports.decision import decision_key, headline, why_text
from cvplatform.reports.document import Block, BulletList, Document, Paragraph, Section
from cvplatform.reports.facts import ReportFacts, read_facts, split_key
from cvplatform.reports.inputs import ReportInput
from cvplatform.reports.technical import footer, key_values, legend, subtitle

PACKAGE_VERSION = "v1.0.0"
SERVING_PORT = 8080


@dataclass(frozen=True)
class Deployment:
    """The commands that deploy the decided engine, filled in with this model."""

    engine: str
    batch_size: int
    package_request: dict[str, str]
    image: str
    docker_build: str
    docker_run: str


def model_slug(name: str, fallback: str) -> str:
    """A Docker-safe name: lower case, runs of anything else than [a-z0-9] as one "-"."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60].strip("-")
    return slug or re.sub(r"[^a-z0-9]+", "-", fallback.lower()).strip("-") or "model"


def deployment(facts: ReportFacts) -> Deployment | None:
    key = decision_key(facts)
    if key is None:
        return None
    engine, batch_size = split_key(key)
    model = facts.report.model
    image = f"cv-platform-{model_slug(model.name, model.id)}:{PACKAGE_VERSION}"
    return Deployment(
        engine=engine,
        batch_size=batch_size,
        package_request={"engine": engine, "model_id": model.id, "version": PACKAGE_VERSION},
        image=image,
        docker_build=f"docker build -t {image} .",
        docker_run=f"docker run -d -p {SERVING_PORT}:{SERVING_PORT} {image}",
    )


def simple_view(report: ReportInput) -> Document:
    """The simple view of ``report``: a pure function of it."""
    facts = read_facts(report)
    head, tone = headline(facts)
    figures = key_values(facts)
    sections = [Section("Recommendation", (Paragraph(head, tone),))]
    if figures is not None:
        sections.append(Section("Key figures", (figures,)))
    sections.append(Section("Why", (Paragraph(why_text(facts)),)))
    # The chart of what the selection ranked by: latency, or throughput.
    if facts.objective == "throughput":
        chart, heading = charts.throughput_chart(facts), "Throughput at a glance"
    else:
        chart, heading = charts.latency_chart(facts), "Latency at a glance"
    if chart is not None:
        sections.append(Section(heading, (chart,)))
    sections.append(Section("Deploy it", _deploy_blocks(facts)))
    return Document(
        title=f"Which engine to deploy: {report.model.name}",
        subtitle=subtitle("Simple", report),
        sections=tuple(sections),
        footer=footer(report),
        legend=legend(facts),
    )


def package_body(plan: Deployment) -> str:
    """The request body as one line of JSON, keys in a fixed order."""
    return json.dumps(plan.package_request, sort_keys=True, ensure_ascii=False)


def _deploy_blocks(facts: ReportFacts) -> tuple[Block, ...]:
    plan = deployment(facts)
    if plan is None:
        why = "nothing was selected" if facts.measured() else "no engine was measured"
        return (
            Paragraph(
                f"There is nothing to deploy yet: {why}. See the technical view for why, then "
                "run the benchmark again.",
                "warning",
            ),
        )
    blocks: list[Block] = []
    if facts.selected is None:
        blocks.append(
            Paragraph(
                "Nothing met every constraint. If the closest is good enough for you, these are "
                "the steps; otherwise change the constraints or the engines and benchmark again.",
                "warning",
            )
        )
    steps = (
        f"Request the deployment package for {facts.label(plan.engine)} (packages arrive in a "
        f"later release of the platform): POST /api/v1/packages with {package_body(plan)}",
        f"Build the image from the package's folder: {plan.docker_build}",
        f"Run it, serving on port {SERVING_PORT}: {plan.docker_run}",
        _batching_step(plan.batch_size),
    )
    blocks.append(BulletList(steps, ordered=True))
    return tuple(blocks)


def _batching_step(batch_size: int) -> str:
    measured = f"the figures above were measured at batch size {batch_size}"
    if batch_size == 1:
        return f"Send one image per request: {measured}."
    return f"Group requests into batches of {batch_size}: {measured}."
