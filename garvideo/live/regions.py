"""Which regions are seen, lost and found again, and how a phrase's detections become stable instances.

:class:`Visibility` follows every region frame by frame: ``lost`` once it has been unseen for ``lost_after``
seconds, ``found`` when seen again. :class:`Phrases` holds the text regions: on every search it matches the
detector's boxes to the phrase's instances (:func:`garvideo.grounding.match_detections`): a box on a region seen now is that
region; one on a lost region's last box finds it again (it keeps its name and id); any other is a new
instance, ``car``, ``car#2``, ... (names never reused), up to ``max_instances`` at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..pipeline.grounding import instance_names
from ..tracking import RegionPrompt, TrackFrame
from .events import Found, LiveEvent, Lost


@dataclass
class _Seen:
    last_seen: float
    last_box: tuple[int, int, int, int] | None
    lost: bool = False


class Visibility:
    """Lost and found, per region (one thread: the tracking one)."""

    def __init__(self, lost_after: float) -> None:
        self.lost_after = float(lost_after)
        self._regions: dict[str, _Seen] = {}

    def last_box(self, name: str) -> tuple[int, int, int, int] | None:
        seen = self._regions.get(name)
        return None if seen is None else seen.last_box

    def is_lost(self, name: str) -> bool:
        seen = self._regions.get(name)
        return seen is not None and seen.lost

    def forget(self, name: str) -> None:
        self._regions.pop(name, None)

    def update(
        self,
        entries: Mapping[str, TrackFrame],
        obj_ids: Mapping[str, int],
        arrival: float,
        redetected: Sequence[str] = (),
    ) -> list[LiveEvent]:
        """The ``lost`` and ``found`` events of one tracked frame; ``redetected``: regions the detector marked again
        on it (found by the detector rather than by the tracker)."""
        events: list[LiveEvent] = []
        for name, entry in entries.items():
            seen = self._regions.setdefault(name, _Seen(entry.time, entry.box))
            if entry.visible:
                if seen.lost:
                    events.append(
                        Found(
                            time=entry.time,
                            arrival=arrival,
                            region=name,
                            obj_id=obj_ids[name],
                            after=entry.time - seen.last_seen,
                            by="detector" if name in redetected else "tracker",
                            box=entry.box,
                        )
                    )
                self._regions[name] = _Seen(entry.time, entry.box)
            elif not seen.lost and entry.time - seen.last_seen >= self.lost_after:
                seen.lost = True
                events.append(
                    Lost(
                        time=entry.time,
                        arrival=arrival,
                        region=name,
                        obj_id=obj_ids[name],
                        last_seen=seen.last_seen,
                        last_box=seen.last_box,
                    )
                )
        return events


@dataclass
class Phrase:
    """One text region: its phrase, and the names its instances were given so far (in order)."""

    prompt: RegionPrompt
    instances: list[str] = field(default_factory=list)
    issued: int = 0  # instance names handed out (removed ones are never reused)

    def free_names(self, max_instances: int) -> list[str]:
        """The names the next new instances get, as many as ``max_instances`` leaves room for."""
        room = max(0, max_instances - len(self.instances))
        return instance_names(self.prompt.name, self.issued + room)[self.issued :]


class Phrases:
    """The session's text regions and their instances (one thread: the tracking one)."""

    def __init__(self, max_instances: int, every: float) -> None:
        self.max_instances = int(max_instances)
        self.every = float(every)
        self._phrases: dict[str, Phrase] = {}
        self._next_search = 0.0

    def add(self, prompt: RegionPrompt) -> None:
        """A text region (searched for on the next frame, then every ``every`` seconds)."""
        self._phrases[prompt.name] = Phrase(prompt)
        self._next_search = 0.0

    def __bool__(self) -> bool:
        return bool(self._phrases)

    def owner(self, region: str) -> Phrase | None:
        """The phrase a region is an instance of."""
        return next((p for p in self._phrases.values() if region in p.instances), None)

    def names(self) -> set[str]:
        """Every name a phrase holds or may give (so a user's region cannot take one)."""
        return {name for phrase in self._phrases.values() for name in [phrase.prompt.name, *phrase.instances]}

    def instances_of(self, name: str) -> list[str]:
        """The instances of the text region ``name`` (none if it is not one)."""
        phrase = self._phrases.get(name)
        return list(phrase.instances) if phrase is not None else []

    def remove(self, name: str) -> bool:
        """Forget a phrase (``name`` is the text region's) or one instance; True if it was one of them."""
        if self._phrases.pop(name, None) is not None:
            return True
        phrase = self.owner(name)
        if phrase is not None:
            phrase.instances.remove(name)
        return phrase is not None

    def due(self, seconds: float) -> list[Phrase]:
        """The phrases to search for on a frame at ``seconds`` (all of them, every ``every`` seconds)."""
        if not self._phrases or seconds < self._next_search:
            return []
        self._next_search = seconds + self.every
        return list(self._phrases.values())

    def issue(self, phrase: Phrase, name: str) -> None:
        phrase.instances.append(name)
        phrase.issued += 1
