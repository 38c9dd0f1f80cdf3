"""ReAct Workbench: run, inspect, attribute, evaluate and fine-tune reasoning-and-acting agents."""
__version__ = "0.1.0"
