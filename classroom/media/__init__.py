"""Media: one WebRTC connection per participant, forwarding encoded audio and video.

Only this package imports aiortc. Rooms and signaling use :mod:`classroom.media.port`; the app
builds :class:`classroom.media.gateway.AiortcMediaGateway`.
"""

from classroom.media.port import MediaGateway, MediaStatus, SignalSender, StatusCallback

__all__ = ["MediaGateway", "MediaStatus", "SignalSender", "StatusCallback"]
