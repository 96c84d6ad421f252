"""The one adapter to transformers' private SAM2 session state: the layout it relies on, pinned.

If a transformers release renames what the tracker edits, the adapter must
refuse to load (or to prune) with a clear error rather than silently keep
every frame's memories or read the wrong ones.
"""

from __future__ import annotations

import pytest
import torch
from transformers import Sam2VideoInferenceSession, Sam2VideoModel

from garvideo.errors import GarvideoError
from garvideo.tracking import sam2_session
from garvideo.tracking.sam2_session import IncompatibleTransformersError, check_layout


def test_the_installed_transformers_has_the_layout_the_adapter_relies_on():
    check_layout()  # also ran when the module was imported
    session = sam2_session.new_session(40, torch.device("cpu"), torch.float32)
    assert isinstance(session, Sam2VideoInferenceSession)
    assert session.num_frames == 40  # what SAM2 reads as the clip's length, whatever frames the session holds
    sam2_session.add_frame(session, 7, torch.zeros(3, 64, 64))
    assert sam2_session.held(session)[0] == 1
    assert session.num_frames == 40


class _RenamedOutputs(Sam2VideoInferenceSession):
    def obj_id_to_idx(self, obj_id):
        obj_idx = super().obj_id_to_idx(obj_id)
        self.output_dict_per_obj[obj_idx] = {"conditioning": {}, "tracked": {}}
        return obj_idx


class _NoTrackedFrames(Sam2VideoInferenceSession):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.frames_tracked_per_obj


class _LengthAsMethod(Sam2VideoInferenceSession):
    def num_frames(self):  # type: ignore[override]
        return 0


class _ModelWithoutReverse(Sam2VideoModel):
    def forward(self, inference_session, frame_idx=None, frame=None):  # type: ignore[override]
        raise NotImplementedError


@pytest.mark.parametrize(
    "session_class, model_class, message",
    [
        (_RenamedOutputs, Sam2VideoModel, "a new object's outputs are"),
        (_NoTrackedFrames, Sam2VideoModel, "frames_tracked_per_obj"),
        (_LengthAsMethod, Sam2VideoModel, "num_frames is not a property"),
        (Sam2VideoInferenceSession, _ModelWithoutReverse, "forward takes no reverse"),
    ],
)
def test_a_changed_layout_is_refused_loudly(session_class, model_class, message):
    with pytest.raises(IncompatibleTransformersError, match=message) as caught:
        check_layout(session_class, model_class)
    assert "transformers 5.17 to 5.24" in str(caught.value)  # says which layouts garvideo knows
    assert isinstance(caught.value, GarvideoError)  # the CLI prints it as one line


def test_pruning_refuses_frame_outputs_under_unknown_keys():
    session = sam2_session.new_session(10, torch.device("cpu"), torch.float32)
    obj_idx = session.obj_id_to_idx(1)
    tracked = session.output_dict_per_obj[obj_idx]["non_cond_frame_outputs"]
    tracked[3] = {"object_pointer": torch.zeros(1, 8), "memory_features": torch.zeros(4, 1, 8)}
    with pytest.raises(IncompatibleTransformersError, match="memory_features"):
        sam2_session.prune(session, 4, masks_kept=(3,), pointers_kept=(3,))


def test_pruning_keeps_exactly_what_is_asked():
    session = sam2_session.new_session(10, torch.device("cpu"), torch.float32)
    obj_idx = session.obj_id_to_idx(1)
    outputs = session.output_dict_per_obj[obj_idx]

    def entry():
        keys = ("pred_masks", "high_res_masks", "object_pointer", "object_score_logits")
        return {key: torch.zeros(1) for key in keys} | {"maskmem_features": torch.zeros(1), "maskmem_pos_enc": [1]}

    outputs["cond_frame_outputs"][0] = entry()
    for index in range(1, 6):
        outputs["non_cond_frame_outputs"][index] = entry()
    session.frames_tracked_per_obj[obj_idx][5] = {"reverse": False}
    sam2_session.add_frame(session, 5, torch.zeros(3, 8, 8))

    sam2_session.prune(session, 5, masks_kept=(4, 5), pointers_kept=(2, 3, 4, 5))

    assert set(outputs["cond_frame_outputs"][0]) == sam2_session.ENTRY_KEYS - {"high_res_masks"}
    tracked = outputs["non_cond_frame_outputs"]
    assert sorted(tracked) == [2, 3, 4, 5]
    assert set(tracked[2]) == set(tracked[3]) == {"object_pointer", "object_score_logits"}
    assert (
        set(tracked[4])
        == set(tracked[5])
        == {"object_pointer", "object_score_logits", *sam2_session.ENTRY_KEYS}
        - {
            "pred_masks",
            "high_res_masks",
        }
    )
    assert session.frames_tracked_per_obj[obj_idx] == {}
    assert sam2_session.held(session)[:2] == (0, 5)
