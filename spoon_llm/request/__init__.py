"""One request's path under :class:`~spoon_llm.manager.LLMManager`: the attempt loop, streams, deadlines.

* :mod:`.core`: the attempt loop of whole answers, and what every request shares with streams (failure handling:
  attempt failed -> next slot or stop; request completion: stats, ``request_end`` events, cancellation counting);
* :mod:`.stream`: a streamed request (how its provider call is made and its chunks delivered, resume and restart);
* :mod:`.deadline`: bounding an await by what is left of the request's deadline.
"""
