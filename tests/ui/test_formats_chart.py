"""The format comparison's chart: log scales whose domain never includes zero."""

import pandas as pd

from ui.charts import formats_chart


def test_log_scale_bars_never_put_zero_in_the_domain():
    frame = pd.DataFrame(
        {
            "format": ["Keras", "TFLite int8"],
            "size (KB)": [220.0, 60.0],
            "cold load (ms)": [900.0, 4.0],
            "warm load (ms)": [80.0, 0.0],  # A zero can never sit on a log scale.
            "latency per sample (ms)": [0.9, 0.05],
        }
    )
    spec = formats_chart(frame).to_dict()
    encoding = spec["spec"]["encoding"] if "spec" in spec else spec["encoding"]
    assert encoding["x"]["scale"]["type"] == "log"
    # Bars stacked from zero make Vega-Lite put zero in the log domain and draw nothing.
    assert encoding["x"].get("stack", "zero") is None
    assert encoding["x2"] == {"value": 0}
    values = [row["value"] for row in spec["datasets"][next(iter(spec["datasets"]))]]
    assert len(values) == 7 and min(values) > 0
