package android.webkit;

import java.io.InputStream;

public class WebResourceResponse {
    public WebResourceResponse(String mimeType, String encoding, InputStream data) { throw new RuntimeException("Stub!"); }
}
