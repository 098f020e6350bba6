"""The course's layers, one concept per module, written with ``keras.ops`` only."""

__all__: list[str] = []
