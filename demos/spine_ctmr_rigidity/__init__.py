"""Spine CT/MR demo: van Ulsen's rigidity-preserving registration of vertebrae (US, US-RP, WS, WS-RP)."""
