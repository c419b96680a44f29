"""Numbers from the networks: gradients and saliency, filters, model comparison.

Only `gradients` touches mxnet; the rest works on numpy arrays."""
