from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = ROOT / "cases" / "models" / "cu_emt.safetensors"
