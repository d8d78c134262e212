"""``stylize``: the visitor restyled as a 3D character — whoever the photo shows.

- A usable frontal face: the head-and-shoulders crop around the largest one
  (``subject: "face"``).
- No usable frontal face, but people found another way (a tilted or profile face, small
  faces of a group from afar; :func:`~refract.imaging.subjects.find_subject`): the backend
  restyles them from the whole photo (``"person"`` or ``"group"``): Gemini gets the whole
  photo with a prompt for that case, the local backend the region around the people.
- Nobody at all: the feature fails ``no_face_detected``, and ``card`` is then made from
  the photo itself, so the visitor still leaves with a card.

The result says which case it was (``subject``, ``people``, ``found_by``) and, in the job's
language, a sentence for the visitor (``message``).
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from refract.core.errors import FeatureError
from refract.core.languages import written
from refract.gateway.base import ModelReply
from refract.imaging.faces import crop_largest_face
from refract.imaging.subjects import find_subject
from refract.jobs.catalog import FEATURES
from tasks.inputs import stored_image
from tasks.runner import FeatureContext, run_feature

FEATURE = "stylize"

MESSAGES = {
    "face": {
        "en": "Your portrait: head and shoulders, restyled as a character.",
        "ko": "얼굴과 어깨를 담아 캐릭터로 바꾼 초상화입니다.",
    },
    "person": {
        "en": "No face was turned to the camera, so the person in the photo was restyled as found.",
        "ko": "카메라를 정면으로 본 얼굴이 없어, 사진 속 인물을 보이는 모습 그대로 캐릭터로 "
        "바꿨습니다.",
    },
    "group": {
        "en": "No single face filled the frame, so the {n} people in the photo were "
        "restyled together.",
        "ko": "화면을 채운 얼굴이 없어, 사진 속 {n}명을 함께 캐릭터로 바꿨습니다.",
    },
}
NOBODY = "no face or person was found in the photo; the card is made from the photo itself"


def restyle(ctx: FeatureContext) -> ModelReply:
    """Restyle the largest face, else the people found, else fail ``no_face_detected``."""
    photo = stored_image(ctx, ctx.input.get("photo_artifact_id"), what="photo")
    lang = written(ctx.language).code
    ctx.report(0.2, "finding the face")
    face = crop_largest_face(photo.data)
    if face is not None:
        ctx.report(0.4, "restyling the face")
        reply = ctx.backend.stylize_face(face, language=ctx.language)
        subject, people, found_by = "face", 1, "frontal face"
    else:
        ctx.report(0.3, "no frontal face; looking for people")
        found = find_subject(photo.data)
        if found.kind not in ("person", "group"):
            raise FeatureError("no_face_detected", NOBODY)
        ctx.report(0.4, f"restyling {found.people} person(s) from the whole photo")
        reply = ctx.backend.stylize_photo(photo, found, language=ctx.language)
        subject, people, found_by = found.kind, found.people, found.method
    reply.data.update(
        subject=subject,
        people=people,
        found_by=found_by,
        message=MESSAGES[subject][lang].format(n=people),
    )
    return reply


@shared_task(name=FEATURES[FEATURE].task_name, bind=True)
def stylize(self: Task[Any, Any], job_id: str) -> dict[str, Any]:
    """Run the ``stylize`` feature of ``job_id``."""
    return run_feature(self, job_id, FEATURE, restyle)
