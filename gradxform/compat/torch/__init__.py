"""torch.optim's optimizers with torch's argument names, defaults and numerics (see `optimizers`)."""

from gradxform.compat.torch.optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, NAdam, RMSprop

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "NAdam"]
