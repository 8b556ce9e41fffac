"""What the shipped model outputs: the office classes' probabilities, never the hidden "other".

A run trained with ``--other-class`` (issue 8, method b) ends in a softmax over N office classes
plus "other". "Other" must never be shown as a label, and every consumer (server, phone page, old
clients) reads N outputs in manifest class order, so export cuts the last output off the graph:
the shipped model returns the N office probabilities, which sum to ``1 - p(other)`` instead of 1.
A photo the model takes for a non-office object moves its mass into "other" and so pulls every
office probability down: the abstain rule's score reads that (the office outputs' sum, or their
max; ``export.abstain.METHODS``), from the same N outputs every consumer already reads.

    from export.outputs import office_outputs
    shipped = office_outputs(model, num_classes=20)    # (B, 21) softmax -> (B, 20); a 20-output model is returned as is

The cut is a strided slice on the int8 softmax output, which keeps its 1/256 scale: the converted
graph stays fully integer.
"""

from __future__ import annotations


def office_outputs(model, num_classes: int):
    """``model`` with its outputs after the first ``num_classes`` dropped."""
    from training.tfenv import keras

    outputs = model.output_shape[-1]
    if outputs == num_classes:
        return model
    if outputs != num_classes + 1:
        raise ValueError(f"model has {outputs} outputs, expected {num_classes} or {num_classes} + 'other'")
    probs = keras.layers.Lambda(lambda p: p[:, :num_classes], name="office_probs")(model.output)
    return keras.Model(model.input, probs, name=model.name)
