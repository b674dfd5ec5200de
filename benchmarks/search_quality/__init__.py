"""Search quality: how fast optimizers reach a good model (issue 18). See ``__main__``."""
