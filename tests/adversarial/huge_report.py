# Report, by hand, an error whose type name and message are a megabyte long.
$forged_report


def gd_step(theta, grad, lr):
    def result(number):
        size = 125_000 if number == 0 else 1
        return {"status": "raised", "error": {"type": "Huge" * size, "message": "huge " * size}}

    forge_report(result)
