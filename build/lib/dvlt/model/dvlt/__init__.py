"""Import path of the model card's Quick Start: `from dvlt.model.dvlt.model import DVLT`."""
